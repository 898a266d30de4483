//! Ticket properties (R11 and typed custom values): the built-in set, the
//! fixed card, and validation of values against their definitions.

/// Built-in properties: fields of the ticket itself, always defined.
pub const BUILT_IN: [(&str, &str); 10] = [
    ("name", "Name"),
    ("description", "Description"),
    ("pipeline", "Pipeline"),
    ("stage", "Stage"),
    ("priority", "Priority"),
    ("owner", "Owner"),
    ("contact", "Contact"),
    ("created", "Created"),
    ("updated", "Updated"),
    ("closed", "Closed"),
];

pub const MAX_STRING_VALUE: usize = 10_000;
pub const MAX_OPTIONS: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub enum PropertyKind {
    String,
    Number,
    Bool,
    Date,
    Enum(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    String(String),
    Number(f64),
    Bool(bool),
    Date(String),
    Enum(String),
}

pub fn is_built_in(name: &str) -> bool {
    BUILT_IN.iter().any(|(n, _)| *n == name)
}

/// `[a-z][a-z0-9_]{0,62}`: safe in field masks (`properties.<name>`) and URLs.
pub fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 63
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Why a value does not fit its definition; `None` when it does.
pub fn check_value(kind: &PropertyKind, value: &PropertyValue) -> Option<String> {
    match (kind, value) {
        (PropertyKind::String, PropertyValue::String(s))
            if s.chars().count() > MAX_STRING_VALUE =>
        {
            Some(format!("must be at most {MAX_STRING_VALUE} characters"))
        }
        (PropertyKind::String, PropertyValue::String(_))
        | (PropertyKind::Bool, PropertyValue::Bool(_)) => None,
        (PropertyKind::Number, PropertyValue::Number(n)) if !n.is_finite() => {
            Some("must be a finite number".into())
        }
        (PropertyKind::Number, PropertyValue::Number(_)) => None,
        (PropertyKind::Date, PropertyValue::Date(d)) => kit::time::parse_date(d)
            .is_none()
            .then(|| "must be a date, YYYY-MM-DD".into()),
        (PropertyKind::Enum(options), PropertyValue::Enum(v)) => {
            (!options.contains(v)).then(|| format!("must be one of {}", options.join(", ")))
        }
        (kind, _) => Some(format!("must be a {} value", kind_name(kind))),
    }
}

fn kind_name(kind: &PropertyKind) -> &'static str {
    match kind {
        PropertyKind::String => "string",
        PropertyKind::Number => "number",
        PropertyKind::Bool => "bool",
        PropertyKind::Date => "date",
        PropertyKind::Enum(_) => "enum",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_against_their_kind() {
        assert_eq!(
            check_value(&PropertyKind::Number, &PropertyValue::Number(2.5)),
            None
        );
        assert!(check_value(&PropertyKind::Number, &PropertyValue::Number(f64::NAN)).is_some());
        assert!(check_value(&PropertyKind::Number, &PropertyValue::String("2".into())).is_some());
        assert_eq!(
            check_value(
                &PropertyKind::Date,
                &PropertyValue::Date("2024-02-29".into())
            ),
            None
        );
        assert!(
            check_value(
                &PropertyKind::Date,
                &PropertyValue::Date("2023-02-29".into())
            )
            .is_some()
        );
        let tiers = PropertyKind::Enum(vec!["gold".into(), "silver".into()]);
        assert_eq!(
            check_value(&tiers, &PropertyValue::Enum("gold".into())),
            None
        );
        assert!(check_value(&tiers, &PropertyValue::Enum("bronze".into())).is_some());
    }

    #[test]
    fn names_are_identifiers() {
        assert!(is_valid_name("sla_tier2"));
        for bad in ["", "2x", "Tier", "a-b", "a b", &"x".repeat(64)] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(is_built_in("stage") && !is_built_in("sla"));
    }
}
