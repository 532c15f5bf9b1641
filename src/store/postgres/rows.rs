//! Reading domain values out of PostgreSQL rows, and the column lists those readers expect.
//! Timestamps are BIGINT epoch milliseconds; a value out of [`Timestamp`]'s range or an unknown
//! enum text is a decoding error, never a panic.

use crate::domain::Timestamp;
use crate::domain::call::{Call, CallState, Direction};
use crate::domain::webhook::{MetadataPolicy, SigningAlgo, Statistics, Webhook, WebhookSpec};
use sqlx::Row;
use sqlx::postgres::PgRow;

/// A timestamp column.
pub(super) fn ts(row: &PgRow, column: &str) -> Result<Timestamp, sqlx::Error> {
    to_ts(column, row.try_get(column)?)
}

/// A nullable timestamp column.
pub(super) fn opt_ts(row: &PgRow, column: &str) -> Result<Option<Timestamp>, sqlx::Error> {
    let ms: Option<i64> = row.try_get(column)?;
    ms.map(|ms| to_ts(column, ms)).transpose()
}

pub(super) fn to_ts(column: &str, ms: i64) -> Result<Timestamp, sqlx::Error> {
    Timestamp::from_millis(ms).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: format!("{ms} ms is outside the supported time range").into(),
    })
}

/// A text column holding an enum's name.
pub(super) fn text_enum<T>(
    row: &PgRow,
    column: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(column)?;
    parse(&text).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: format!("unexpected value {text:?}").into(),
    })
}

/// A non-negative count stored as INTEGER.
pub(super) fn count_u32(row: &PgRow, column: &str) -> Result<u32, sqlx::Error> {
    let n: i32 = row.try_get(column)?;
    u32::try_from(n).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(e),
    })
}

pub(super) const WEBHOOK_COLUMNS: &str = "id, account_id, user_id, url, events, signing_algo, \
    signing_key, metadata_policy, expire_at, created_at, created_by, renewed_at, renewed_by, \
    purge_at, total_attempts, total_successes, total_failures, failed, last_success, last_failure, \
    last_http_error_code, last_error_message";

pub(super) fn webhook(row: &PgRow) -> Result<Webhook, sqlx::Error> {
    let events: String = row.try_get("events")?;
    Ok(Webhook {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        user_id: row.try_get("user_id")?,
        spec: WebhookSpec {
            url: row.try_get("url")?,
            events: events.split(',').map(str::to_string).collect(),
            signing_algo: text_enum(row, "signing_algo", SigningAlgo::parse)?,
            signing_key: row.try_get("signing_key")?,
            metadata_policy: text_enum(row, "metadata_policy", MetadataPolicy::parse)?,
        },
        expire_at: ts(row, "expire_at")?,
        created_at: ts(row, "created_at")?,
        created_by: row.try_get("created_by")?,
        renewed_at: opt_ts(row, "renewed_at")?,
        renewed_by: row.try_get("renewed_by")?,
        purge_at: ts(row, "purge_at")?,
        statistics: Statistics {
            total_attempts: row.try_get("total_attempts")?,
            total_successes: row.try_get("total_successes")?,
            total_failures: row.try_get("total_failures")?,
            failed: row.try_get("failed")?,
            last_success: opt_ts(row, "last_success")?,
            last_failure: opt_ts(row, "last_failure")?,
            last_http_error_code: row.try_get("last_http_error_code")?,
            last_error_message: row.try_get("last_error_message")?,
        },
    })
}

pub(super) const CALL_COLUMNS: &str = "seq, id, external_id, account_id, user_id, direction, \
    phone_number, caller_id, internal, ucp_type, state, start_time, answer_time, end_time, \
    duration, updated_at";

/// A call and its row number.
pub(super) fn call(row: &PgRow) -> Result<(i64, Call), sqlx::Error> {
    Ok((
        row.try_get("seq")?,
        Call {
            id: row.try_get("id")?,
            external_id: row.try_get("external_id")?,
            account_id: row.try_get("account_id")?,
            user_id: row.try_get("user_id")?,
            direction: text_enum(row, "direction", Direction::parse)?,
            phone_number: row.try_get("phone_number")?,
            caller_id: row.try_get("caller_id")?,
            internal: row.try_get("internal")?,
            ucp_type: row.try_get("ucp_type")?,
            state: text_enum(row, "state", CallState::parse)?,
            start_time: ts(row, "start_time")?,
            answer_time: opt_ts(row, "answer_time")?,
            end_time: opt_ts(row, "end_time")?,
            duration: row.try_get("duration")?,
            updated_at: ts(row, "updated_at")?,
        },
    ))
}
