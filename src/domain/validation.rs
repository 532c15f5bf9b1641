//! Validation by parsing: helpers that read fields out of a JSON object and collect one
//! [`FieldError`] per bad field, so a client learns about every mistake at once.

use serde::Serialize;
use serde_json::{Map, Value};

/// One invalid field (or query parameter) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Reads the fields of one JSON object, collecting errors instead of stopping at the first.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// Wraps a JSON value that must be an object; anything else is one error on `body`.
    pub fn of(value: &'a Value) -> Result<Self, Vec<FieldError>> {
        match value {
            Value::Object(object) => Ok(Fields {
                object,
                errors: Vec::new(),
            }),
            _ => Err(vec![FieldError::new("body", "must be a JSON object")]),
        }
    }

    /// Adds an error for every key not in `known`.
    pub fn reject_unknown(&mut self, known: &[&str]) {
        for key in self.object.keys() {
            if !known.contains(&key.as_str()) {
                self.errors
                    .push(FieldError::new(key.clone(), "unknown field"));
            }
        }
    }

    fn present(&self, name: &str) -> Option<&'a Value> {
        self.object.get(name).filter(|v| !v.is_null())
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// A string of at most `max` characters; `None` when absent or null.
    pub fn opt_string(&mut self, name: &str, max: usize) -> Option<String> {
        match self.present(name)? {
            Value::String(s) if s.chars().count() > max => {
                self.error(name, format!("must be at most {max} characters"));
                None
            }
            Value::String(s) => Some(s.clone()),
            _ => {
                self.error(name, "must be a string");
                None
            }
        }
    }

    /// A required, non-empty string of at most `max` characters.
    pub fn string(&mut self, name: &str, max: usize) -> Option<String> {
        if self.present(name).is_none() {
            self.error(name, "is required");
            return None;
        }
        let s = self.opt_string(name, max)?;
        if s.trim().is_empty() {
            self.error(name, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// A required, non-empty string of at most `max` characters, or a non-negative integer
    /// (returned as a string).
    pub fn string_or_integer(&mut self, name: &str, max: usize) -> Option<String> {
        match self.present(name) {
            Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
            Some(Value::Number(_)) => {
                self.error(name, "must be a string or a non-negative integer");
                None
            }
            _ => self.string(name, max),
        }
    }

    /// A required identifier: a string or a non-negative integer, returned as a string.
    pub fn id(&mut self, name: &str) -> Option<String> {
        match self.present(name) {
            None => {
                self.error(name, "is required");
                None
            }
            Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
            Some(Value::String(s)) => match check_id(s) {
                Ok(()) => Some(s.clone()),
                Err(message) => {
                    self.error(name, message);
                    None
                }
            },
            Some(_) => {
                self.error(name, "must be a string or a non-negative integer");
                None
            }
        }
    }

    pub fn opt_bool(&mut self, name: &str) -> Option<bool> {
        match self.present(name)? {
            Value::Bool(b) => Some(*b),
            _ => {
                self.error(name, "must be true or false");
                None
            }
        }
    }

    /// An optional enum value given as a string, parsed with `parse`.
    pub fn opt_enum<T>(
        &mut self,
        name: &str,
        allowed: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        match self.present(name)? {
            Value::String(s) => {
                let parsed = parse(s);
                if parsed.is_none() {
                    self.error(name, format!("must be one of {allowed}"));
                }
                parsed
            }
            _ => {
                self.error(name, format!("must be a string, one of {allowed}"));
                None
            }
        }
    }

    /// A required enum value.
    pub fn required_enum<T>(
        &mut self,
        name: &str,
        allowed: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        if self.present(name).is_none() {
            self.error(name, format!("is required, one of {allowed}"));
            return None;
        }
        self.opt_enum(name, allowed, parse)
    }

    /// The raw value of a field, when present and not null.
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.present(name)
    }

    /// Ends parsing: the collected errors, if any.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

/// Account and user ids: 1 to 64 characters of letters, digits, `.`, `_`, `-`, `:` or `@`.
pub fn check_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@'))
    {
        return Err("may contain only letters, digits and . _ - : @");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn collects_every_bad_field() {
        let body = json!({"a": 5, "b": "", "extra": 1});
        let mut f = Fields::of(&body).unwrap();
        f.reject_unknown(&["a", "b", "c"]);
        assert_eq!(f.string("a", 10), None);
        assert_eq!(f.string("b", 10), None);
        assert_eq!(f.id("c"), None);
        let errors = f.finish().unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["extra", "a", "b", "c"]);
    }

    #[test]
    fn ids_accept_strings_and_integers() {
        let body = json!({"a": 376, "b": "24785", "c": -1, "d": "a b"});
        let mut f = Fields::of(&body).unwrap();
        assert_eq!(f.id("a").as_deref(), Some("376"));
        assert_eq!(f.id("b").as_deref(), Some("24785"));
        assert_eq!(f.id("c"), None);
        assert_eq!(f.id("d"), None);
        assert_eq!(f.finish().unwrap_err().len(), 2);
    }

    #[test]
    fn non_objects_are_refused() {
        assert!(Fields::of(&json!([1, 2])).is_err());
    }
}
