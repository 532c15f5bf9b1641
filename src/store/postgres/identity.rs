//! Tokens, users and accounts in PostgreSQL: storing a token with the profile it names, and the
//! lookups that authenticate a request or describe its caller.

use super::rows::{opt_ts, ts};
use super::tokens::TOKENS_CHANNEL;
use crate::domain::Timestamp;
use crate::domain::identity::{AccountProfile, Owner, Principal, Role, UserProfile};
use crate::store::{NewToken, TokenInfo};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

/// Stores a token and creates (or fills in: only given values overwrite) its user and account.
pub(super) async fn create_token(
    c: &mut PgConnection,
    token: &NewToken,
) -> Result<TokenInfo, sqlx::Error> {
    if let Some(p) = &token.profile {
        let now = token.created_at.millis();
        sqlx::query(
            "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET name = COALESCE(EXCLUDED.name, accounts.name)",
        )
        .bind(&p.account_id)
        .bind(&p.account_name)
        .bind(now)
        .execute(&mut *c)
        .await?;
        sqlx::query(
            "INSERT INTO users (account_id, id, first_name, last_name, email, contact_number, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (account_id, id) DO UPDATE SET \
             first_name = COALESCE(EXCLUDED.first_name, users.first_name), \
             last_name = COALESCE(EXCLUDED.last_name, users.last_name), \
             email = COALESCE(EXCLUDED.email, users.email), \
             contact_number = COALESCE(EXCLUDED.contact_number, users.contact_number)",
        )
        .bind(&p.account_id)
        .bind(&p.user_id)
        .bind(&p.first_name)
        .bind(&p.last_name)
        .bind(&p.email)
        .bind(&p.contact_number)
        .bind(now)
        .execute(&mut *c)
        .await?;
    }
    sqlx::query(
        "INSERT INTO tokens (id, hash, role, account_id, user_id, name, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&token.id)
    .bind(token.hash.as_slice())
    .bind(token.role.as_str())
    .bind(&token.account_id)
    .bind(&token.user_id)
    .bind(&token.name)
    .bind(token.created_at.millis())
    .bind(token.expires_at.map(Timestamp::millis))
    .execute(&mut *c)
    .await?;
    Ok(TokenInfo {
        id: token.id.clone(),
        role: token.role,
        account_id: token.account_id.clone(),
        user_id: token.user_id.clone(),
        name: token.name.clone(),
        created_at: token.created_at,
        expires_at: token.expires_at,
        revoked_at: None,
    })
}

fn token_info(row: &PgRow) -> Result<TokenInfo, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(TokenInfo {
        id: row.try_get("id")?,
        role: Role::parse(&role).unwrap_or(Role::User),
        account_id: row.try_get("account_id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        created_at: ts(row, "created_at")?,
        expires_at: opt_ts(row, "expires_at")?,
        revoked_at: opt_ts(row, "revoked_at")?,
    })
}

/// Every token, oldest first. Text sorts byte-wise (`COLLATE "C"`), as in SQLite.
pub(super) async fn list_tokens(pool: &PgPool) -> Result<Vec<TokenInfo>, sqlx::Error> {
    sqlx::query(
        "SELECT id, role, account_id, user_id, name, created_at, expires_at, revoked_at \
         FROM tokens ORDER BY created_at, id COLLATE \"C\"",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(token_info)
    .collect()
}

pub(super) async fn revoke_token(
    c: &mut PgConnection,
    id: &str,
    now: Timestamp,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(now.millis())
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 1 {
        // Delivered at the commit: every node forgets the tokens it remembers.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(TOKENS_CHANNEL)
            .execute(&mut *c)
            .await?;
    }
    Ok(n == 1)
}

/// The principal of a valid token, and when the token expires.
pub(super) async fn authenticate(
    pool: &PgPool,
    hash: [u8; 32],
    now: Timestamp,
) -> Result<Option<(Principal, Option<Timestamp>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, role, account_id, user_id, expires_at FROM tokens WHERE hash = $1 \
         AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(hash.as_slice())
    .bind(now.millis())
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let role: String = r.try_get("role")?;
    let expires_at = opt_ts(&r, "expires_at")?;
    Ok(Role::parse(&role).map(|role| {
        let principal = Principal {
            token_id: r.try_get("id").unwrap_or_default(),
            role,
            account_id: r.try_get("account_id").unwrap_or_default(),
            user_id: r.try_get("user_id").unwrap_or_default(),
        };
        (principal, expires_at)
    }))
}

pub(super) async fn user_profile(
    pool: &PgPool,
    owner: &Owner,
) -> Result<Option<UserProfile>, sqlx::Error> {
    sqlx::query(
        "SELECT u.first_name, u.last_name, u.email, u.contact_number, a.name FROM users u \
         JOIN accounts a ON a.id = u.account_id WHERE u.account_id = $1 AND u.id = $2",
    )
    .bind(&owner.account_id)
    .bind(&owner.user_id)
    .fetch_optional(pool)
    .await?
    .map(|r| {
        Ok(UserProfile {
            account_id: owner.account_id.clone(),
            user_id: owner.user_id.clone(),
            first_name: r.try_get(0)?,
            last_name: r.try_get(1)?,
            email: r.try_get(2)?,
            contact_number: r.try_get(3)?,
            account_name: r.try_get(4)?,
        })
    })
    .transpose()
}

pub(super) async fn account_profile(
    pool: &PgPool,
    account_id: &str,
) -> Result<Option<AccountProfile>, sqlx::Error> {
    sqlx::query("SELECT name, org FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(pool)
        .await?
        .map(|r| {
            Ok(AccountProfile {
                account_id: account_id.to_string(),
                name: r.try_get(0)?,
                org: r.try_get(1)?,
            })
        })
        .transpose()
}

pub(super) async fn user_by_number(
    pool: &PgPool,
    account_id: &str,
    number: &str,
) -> Result<Option<Owner>, sqlx::Error> {
    sqlx::query(
        "SELECT id FROM users WHERE account_id = $1 AND contact_number = $2 \
         ORDER BY id COLLATE \"C\" LIMIT 1",
    )
    .bind(account_id)
    .bind(number)
    .fetch_optional(pool)
    .await?
    .map(|r| {
        Ok(Owner {
            account_id: account_id.to_string(),
            user_id: r.try_get(0)?,
        })
    })
    .transpose()
}
