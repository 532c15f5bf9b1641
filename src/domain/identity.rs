//! Who is calling: bearer-token principals, their roles, and the user/account profiles that
//! `/self` and `/self/account` show.

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads and manages the `/self` resources of one user.
    User,
    /// Reports call state changes (optionally limited to one account); nothing else.
    Ingest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Ingest => "ingest",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "ingest" => Some(Role::Ingest),
            _ => None,
        }
    }
}

/// The owner of `/self` resources: one user of one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    pub account_id: String,
    pub user_id: String,
}

/// An authenticated token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub role: Role,
    pub account_id: Option<String>,
    pub user_id: Option<String>,
}

impl Principal {
    /// The user a `user` token acts for.
    pub fn owner(&self) -> Option<Owner> {
        match (self.role, &self.account_id, &self.user_id) {
            (Role::User, Some(account_id), Some(user_id)) => Some(Owner {
                account_id: account_id.clone(),
                user_id: user_id.clone(),
            }),
            _ => None,
        }
    }

    /// May this token report calls of `account_id`?
    pub fn may_ingest_for(&self, account_id: &str) -> bool {
        self.role == Role::Ingest && self.account_id.as_deref().is_none_or(|a| a == account_id)
    }
}

/// A user's profile, as `token create` filled it in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserProfile {
    pub account_id: String,
    pub user_id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub contact_number: Option<String>,
    pub account_name: Option<String>,
}

/// An account's profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountProfile {
    pub account_id: String,
    pub name: Option<String>,
    pub org: Option<String>,
}

/// Bearer tokens look like `chk_` followed by 64 hex digits (256 random bits).
pub const TOKEN_PREFIX: &str = "chk_";

/// A fresh random bearer token. Shown once; only its hash is stored.
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a token. Tokens carry 256 random bits, so a plain SHA-256 is enough: there is
/// nothing to brute-force, and lookups by hash stay O(1).
pub fn hash_token(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let (a, b) = (generate_token(), generate_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 68);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
    }

    #[test]
    fn ingest_tokens_may_be_limited_to_one_account() {
        let mut p = Principal {
            token_id: "t".into(),
            role: Role::Ingest,
            account_id: None,
            user_id: None,
        };
        assert!(p.may_ingest_for("1"));
        p.account_id = Some("2".into());
        assert!(!p.may_ingest_for("1") && p.may_ingest_for("2"));
        p.role = Role::User;
        assert!(!p.may_ingest_for("2"));
    }
}
