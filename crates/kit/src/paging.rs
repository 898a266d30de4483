//! AIP-158 pagination: page sizes with a default and a cap, and opaque page
//! tokens. A token encodes the position after the last item returned
//! (keyset pagination), so pages stay stable while rows are added.

use crate::ApiError;

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 1000;

/// 0 means the default; above the cap is clamped, as AIP-158 asks.
pub fn page_size(requested: i32, field: &str) -> Result<u64, ApiError> {
    match requested {
        n if n < 0 => Err(ApiError::invalid(field, "must not be negative")),
        0 => Ok(DEFAULT_PAGE_SIZE),
        n => Ok((n as u64).min(MAX_PAGE_SIZE)),
    }
}

/// A keyset position: the sort key and id of the last item of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: i64,
    pub id: String,
}

/// Trims a page fetched with one extra row (`limit = page_size + 1`) and
/// returns the token of the next page, empty on the last one.
pub fn next_page<T>(rows: &mut Vec<T>, page_size: u64, key: impl Fn(&T) -> Cursor) -> String {
    if rows.len() as u64 <= page_size {
        return String::new();
    }
    rows.truncate(page_size as usize);
    rows.last()
        .map(|last| encode_token(&key(last)))
        .unwrap_or_default()
}

pub fn encode_token(cursor: &Cursor) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let raw = format!("{}:{}", cursor.key, cursor.id);
    // Every page of every listing ends with one: a String per byte, as
    // `format!("{b:02x}")` would make, showed in the list path's profile.
    let mut token = String::with_capacity(2 * raw.len());
    for byte in raw.bytes() {
        token.push(char::from(HEX[usize::from(byte >> 4)]));
        token.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    token
}

pub fn decode_token(token: &str, field: &str) -> Result<Option<Cursor>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::invalid(field, "is not a page token this server issued");
    if !token.len().is_multiple_of(2) || token.len() > 512 {
        return Err(bad());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>, _>>()?;
    let raw = String::from_utf8(bytes).map_err(|_| bad())?;
    let (key, id) = raw.split_once(':').ok_or_else(bad)?;
    Ok(Some(Cursor {
        key: key.parse().map_err(|_| bad())?,
        id: id.to_owned(),
    }))
}

/// The rows after `cursor` when a page is ordered by `(key, id)` ascending:
/// the keyset condition, so a page costs the same however deep it is.
pub fn after_ascending<K, I>(key: K, id: I, cursor: &Cursor) -> sea_orm::Condition
where
    K: sea_orm::ColumnTrait,
    I: sea_orm::ColumnTrait,
{
    sea_orm::Condition::any().add(key.gt(cursor.key)).add(
        sea_orm::Condition::all()
            .add(key.eq(cursor.key))
            .add(id.gt(cursor.id.clone())),
    )
}

/// As [`after_ascending`], for pages ordered by `(key, id)` descending.
pub fn after_descending<K, I>(key: K, id: I, cursor: &Cursor) -> sea_orm::Condition
where
    K: sea_orm::ColumnTrait,
    I: sea_orm::ColumnTrait,
{
    sea_orm::Condition::any().add(key.lt(cursor.key)).add(
        sea_orm::Condition::all()
            .add(key.eq(cursor.key))
            .add(id.lt(cursor.id.clone())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let cursor = Cursor {
            key: 42,
            id: "abc".into(),
        };
        // Tokens already handed out stay valid: the form is lowercase hex
        // of "key:id".
        assert_eq!(encode_token(&cursor), "34323a616263");
        assert_eq!(
            decode_token(&encode_token(&cursor), "page_token").unwrap(),
            Some(cursor)
        );
        assert!(decode_token("zz", "page_token").is_err());
        assert!(decode_token("abc", "page_token").is_err());
        assert_eq!(decode_token("", "page_token").unwrap(), None);
    }

    #[test]
    fn page_size_defaults_and_caps() {
        assert_eq!(page_size(0, "page_size").unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(5000, "page_size").unwrap(), MAX_PAGE_SIZE);
        assert!(page_size(-1, "page_size").is_err());
    }
}
