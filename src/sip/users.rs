//! The `--sip-users` file: which SIP parties are callhook users. Each entry names a party by a SIP
//! URI (`sip:alice@pbx.example.com`, matched on user and host) or an extension (`1001`, matched on
//! the user part of any URI) and says which (account, user) its calls belong to. TOML or JSON,
//! told apart by the file's extension:
//!
//! ```toml
//! [[users]]
//! extension = "1001"
//! account = "376"
//! user = "24785"
//! ```
//!
//! May depend on: `domain` (id rules), serde, toml, serde_json.

use crate::domain::validation::check_id;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// Whose calls a SIP party's are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub account: String,
    pub user: String,
}

/// The parties callhook knows, by URI (`user@host`, host in lower case) and by extension.
#[derive(Debug, Clone, Default)]
pub struct Users {
    by_uri: HashMap<String, Party>,
    by_extension: HashMap<String, Party>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    users: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    uri: Option<String>,
    extension: Option<String>,
    account: Id,
    user: Id,
}

/// Ids may be written as strings or as numbers, as in the ingestion API.
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(u64),
}

impl Id {
    fn into_string(self) -> String {
        match self {
            Id::Text(s) => s,
            Id::Number(n) => n.to_string(),
        }
    }
}

impl Users {
    /// Reads the file; TOML unless its name ends in `.json`.
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        Users::parse(&text, json).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the file's text (JSON when `json`, else TOML) and checks every entry.
    pub fn parse(text: &str, json: bool) -> Result<Users, String> {
        let shape: FileShape = if json {
            serde_json::from_str(text).map_err(|e| e.to_string())?
        } else {
            toml::from_str(text).map_err(|e| e.to_string())?
        };
        let mut users = Users::default();
        for (i, entry) in shape.users.into_iter().enumerate() {
            let at = format!("users[{i}]");
            let party = Party {
                account: entry.account.into_string(),
                user: entry.user.into_string(),
            };
            check_id(&party.account).map_err(|e| format!("{at}.account {e}"))?;
            check_id(&party.user).map_err(|e| format!("{at}.user {e}"))?;
            match (entry.uri, entry.extension) {
                (Some(uri), None) => {
                    let key = uri_key(&uri)
                        .ok_or_else(|| format!("{at}.uri must look like sip:user@host"))?;
                    users.by_uri.insert(key, party);
                }
                (None, Some(ext)) if !ext.is_empty() && !ext.contains(['@', ':']) => {
                    users.by_extension.insert(ext, party);
                }
                (None, Some(_)) => return Err(format!("{at}.extension must be a bare user part")),
                _ => return Err(format!("{at} needs exactly one of uri and extension")),
            }
        }
        Ok(users)
    }

    /// Who the party with this URI's user part and host is, if anyone: an exact URI entry first,
    /// then an extension entry for the user part.
    pub fn find(&self, user: Option<&str>, host: &str) -> Option<&Party> {
        let user = user?;
        self.by_uri
            .get(&format!("{user}@{}", host.to_ascii_lowercase()))
            .or_else(|| self.by_extension.get(user))
    }

    pub fn len(&self) -> usize {
        self.by_uri.len() + self.by_extension.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `sip:alice@Example.com:5060;transport=udp` -> `alice@example.com`.
fn uri_key(uri: &str) -> Option<String> {
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))?;
    let rest = rest.split([';', '?']).next()?;
    let (user, host) = rest.split_once('@')?;
    let host = host.split(':').next()?;
    (!user.is_empty() && !host.is_empty()).then(|| format!("{user}@{}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_name_the_same_parties() {
        let toml = r#"
            [[users]]
            uri = "sip:alice@PBX.example.com:5060;transport=udp"
            account = 376
            user = "24785"
            [[users]]
            extension = "1002"
            account = "376"
            user = "bob"
        "#;
        let json = r#"{"users": [
            {"uri": "sip:alice@pbx.example.com", "account": "376", "user": "24785"},
            {"extension": "1002", "account": 376, "user": "bob"}]}"#;
        for users in [Users::parse(toml, false), Users::parse(json, true)] {
            let users = users.unwrap();
            assert_eq!(users.len(), 2);
            let alice = users.find(Some("alice"), "pbx.EXAMPLE.com").unwrap();
            assert_eq!(
                (alice.account.as_str(), alice.user.as_str()),
                ("376", "24785")
            );
            // An extension matches whatever the host.
            assert_eq!(users.find(Some("1002"), "10.0.0.1").unwrap().user, "bob");
            assert!(users.find(Some("alice"), "other.example.com").is_none());
            assert!(users.find(None, "pbx.example.com").is_none());
        }
    }

    #[test]
    fn the_sample_file_in_deploy_is_valid() {
        let users = Users::parse(include_str!("../../deploy/sip-users.toml"), false).unwrap();
        assert_eq!(users.len(), 4);
        assert_eq!(users.find(Some("bob"), "127.0.0.1").unwrap().user, "bob");
    }

    #[test]
    fn bad_entries_are_refused_with_their_place() {
        let cases = [
            (
                r#"[[users]]
                uri = "alice"
                account = "1"
                user = "2""#,
                "users[0].uri",
            ),
            (
                r#"[[users]]
                extension = "1001"
                uri = "sip:a@b"
                account = "1"
                user = "2""#,
                "exactly one",
            ),
            (
                r#"[[users]]
                extension = "1001"
                account = "bad id!"
                user = "2""#,
                "users[0].account",
            ),
            (
                r#"[[users]]
                extension = "1001"
                account = "1"
                user = "2"
                colour = "red""#,
                "unknown field",
            ),
        ];
        for (text, expect) in cases {
            let err = Users::parse(text, false).unwrap_err();
            assert!(err.contains(expect), "{err} should mention {expect}");
        }
    }
}
