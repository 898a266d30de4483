//! Field checks shared by both services. Each names the field it refuses.

use crate::ApiError;

pub const MAX_NAME_LEN: usize = 500;
pub const MAX_TEXT_LEN: usize = 64 * 1024;
pub const MAX_ID_LEN: usize = 64;

/// A required text field, trimmed, at most `max` characters.
pub fn required(value: &str, field: &str, max: usize) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    bounded(trimmed, field, max)
}

/// An optional text field: empty becomes `None`.
pub fn optional(value: &str, field: &str, max: usize) -> Result<Option<String>, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    bounded(trimmed, field, max).map(Some)
}

fn bounded(value: &str, field: &str, max: usize) -> Result<String, ApiError> {
    // PostgreSQL text cannot hold NUL, and other control characters are never
    // meant in names or bodies: refusing them keeps both backends identical.
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters (other than tab and line breaks)",
        ));
    }
    if value.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// A required resource id: 1–64 characters of `[A-Za-z0-9_-]`.
pub fn id(value: &str, field: &str) -> Result<String, ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    optional_id(value, field).map(|id| id.unwrap_or_default())
}

/// An optional id (e.g. a filter or an owner): empty becomes `None`.
pub fn optional_id(value: &str, field: &str) -> Result<Option<String>, ApiError> {
    if value.is_empty() {
        return Ok(None);
    }
    let well_formed = value.len() <= MAX_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || b == b'@');
    if well_formed {
        Ok(Some(value.to_owned()))
    } else {
        Err(ApiError::invalid(
            field,
            "must be at most 64 characters of letters, digits, '-', '_', '.' and '@'",
        ))
    }
}

/// The etag of a resource at `version` (AIP-154): opaque to callers.
pub fn etag(version: i64) -> String {
    version.to_string()
}

/// Empty means "no check"; anything else must be an etag this server issued
/// (a quoted one is accepted too).
pub fn parse_etag(etag: &str, field: &str) -> Result<Option<i64>, ApiError> {
    if etag.is_empty() {
        return Ok(None);
    }
    etag.trim_matches('"')
        .parse()
        .map(Some)
        .map_err(|_| ApiError::invalid(field, "is not an etag this server issued"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_field() {
        let err = required("  ", "ticket.name", 10).unwrap_err();
        assert!(
            matches!(err, ApiError::InvalidArgument { ref field, .. } if field == "ticket.name")
        );
        assert!(required("abcdefghijk", "x", 10).is_err());
        assert_eq!(optional("", "x", 10).unwrap(), None);
        assert!(id("a b", "id").is_err());
        assert!(required("a\0b", "x", 10).is_err());
        assert!(optional("line\r\nnext\ttab", "x", 20).is_ok());
        assert!(id("", "id").is_err());
        assert_eq!(id("0193-ab_c", "id").unwrap(), "0193-ab_c");
    }
}
