//! Mapping sqlx errors onto [`StoreError`], which transaction failures are worth retrying at
//! once, and how a database URL is shown in messages (without its password).
//!
//! Conditions that may clear by themselves (the pool timed out, I/O, a closed connection, the
//! server shutting down, out of disk or memory, a read-only server) are `Unavailable`; the rest
//! are `Internal`.

use crate::store::StoreError;

/// Does this SQLSTATE say the server cannot serve right now, rather than that the request is
/// wrong? Class 08 (connection exception), class 53 (insufficient resources: disk full 53100,
/// out of memory, too many connections), 57P01..57P03 (admin or crash shutdown, cannot connect
/// now) and 25006 (read-only transaction: a standby, or a primary set read-only).
pub(super) fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "25006")
}

/// Serialization failures and deadlocks: the transaction lost a race and is retried whole.
pub(super) fn is_retryable_code(code: &str) -> bool {
    matches!(code, "40001" | "40P01")
}

fn code(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

/// Should the transaction that failed with `e` run again?
pub(super) fn is_retryable(e: &sqlx::Error) -> bool {
    code(e).is_some_and(|c| is_retryable_code(&c))
}

pub(super) fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        // A closed connection shows as an I/O error (end of stream, reset, broken pipe).
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(_) => code(e).is_some_and(|c| is_unavailable_code(&c)),
        _ => false,
    }
}

pub(super) fn classify(e: sqlx::Error) -> StoreError {
    if is_unavailable(&e) {
        StoreError::Unavailable(Box::new(e))
    } else {
        StoreError::Internal(Box::new(e))
    }
}

/// `url` without its password (in the user info or a `password` parameter), for messages and
/// logs. Text that is not a URL is not shown at all, as it could be anything.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "(an unparsable database URL)".into();
    };
    if parsed.password().is_some() {
        // Fails only for URLs that cannot have a password (no host), which have none.
        let _ = parsed.set_password(None);
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != "password")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if parsed.query().is_some() {
        if pairs.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
        }
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_resource_and_shutdown_codes_are_unavailable() {
        for code in [
            "08006", "08001", "53100", "53300", "57P01", "57P02", "57P03", "25006",
        ] {
            assert!(is_unavailable_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22003", "40001", "57014", "25P02"] {
            assert!(!is_unavailable_code(code), "{code}");
        }
    }

    #[test]
    fn only_serialization_failures_and_deadlocks_are_retried() {
        assert!(is_retryable_code("40001"));
        assert!(is_retryable_code("40P01"));
        assert!(!is_retryable_code("23505"));
        assert!(!is_retryable_code("08006"));
        assert!(!is_retryable(&sqlx::Error::PoolTimedOut));
    }

    #[test]
    fn pool_and_io_failures_are_unavailable_and_decoding_failures_internal() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(matches!(
            classify(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::Io(io)),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::PoolClosed),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::RowNotFound),
            StoreError::Internal(_)
        ));
        assert!(matches!(
            classify(sqlx::Error::Decode("bad".into())),
            StoreError::Internal(_)
        ));
    }

    #[test]
    fn urls_lose_their_passwords_and_keep_the_rest() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.example:5432/callhook"),
            "postgres://app@db.example:5432/callhook"
        );
        assert_eq!(
            redact_url("postgres://db/callhook?password=s3cret&sslmode=require"),
            "postgres://db/callhook?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db/callhook?password=s3cret"),
            "postgres://db/callhook"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert!(!redact_url("not a url s3cret").contains("s3cret"));
    }
}
