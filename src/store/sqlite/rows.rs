//! Reading domain values out of SQLite rows, and the column lists those readers expect.

use crate::domain::Timestamp;
use crate::domain::call::{Call, CallState, Direction};
use crate::domain::webhook::{MetadataPolicy, SigningAlgo, Statistics, Webhook, WebhookSpec};
use rusqlite::Row;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};

/// Timestamps are stored as epoch milliseconds.
impl FromSql for Timestamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let ms = i64::column_result(value)?;
        Timestamp::from_millis(ms).ok_or(FromSqlError::OutOfRange(ms))
    }
}

fn text_enum<T>(
    row: &Row<'_>,
    idx: usize,
    parse: impl Fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unexpected value {text:?}").into(),
        )
    })
}

pub(super) const WEBHOOK_COLUMNS: &str = "id, account_id, user_id, url, events, signing_algo, \
    signing_key, metadata_policy, expire_at, created_at, created_by, renewed_at, renewed_by, \
    purge_at, total_attempts, total_successes, total_failures, failed, last_success, last_failure, \
    last_http_error_code, last_error_message";

pub(super) fn webhook(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    let events: String = row.get(4)?;
    Ok(Webhook {
        id: row.get(0)?,
        account_id: row.get(1)?,
        user_id: row.get(2)?,
        spec: WebhookSpec {
            url: row.get(3)?,
            events: events.split(',').map(str::to_string).collect(),
            signing_algo: text_enum(row, 5, SigningAlgo::parse)?,
            signing_key: row.get(6)?,
            metadata_policy: text_enum(row, 7, MetadataPolicy::parse)?,
        },
        expire_at: row.get(8)?,
        created_at: row.get(9)?,
        created_by: row.get(10)?,
        renewed_at: row.get(11)?,
        renewed_by: row.get(12)?,
        purge_at: row.get(13)?,
        statistics: Statistics {
            total_attempts: row.get(14)?,
            total_successes: row.get(15)?,
            total_failures: row.get(16)?,
            failed: row.get(17)?,
            last_success: row.get(18)?,
            last_failure: row.get(19)?,
            last_http_error_code: row.get(20)?,
            last_error_message: row.get(21)?,
        },
    })
}

pub(super) const CALL_COLUMNS: &str = "seq, id, external_id, account_id, user_id, direction, \
    phone_number, caller_id, internal, ucp_type, state, start_time, answer_time, end_time, \
    duration, updated_at";

/// A call and its row number.
pub(super) fn call(row: &Row<'_>) -> rusqlite::Result<(i64, Call)> {
    Ok((
        row.get(0)?,
        Call {
            id: row.get(1)?,
            external_id: row.get(2)?,
            account_id: row.get(3)?,
            user_id: row.get(4)?,
            direction: text_enum(row, 5, Direction::parse)?,
            phone_number: row.get(6)?,
            caller_id: row.get(7)?,
            internal: row.get(8)?,
            ucp_type: row.get(9)?,
            state: text_enum(row, 10, CallState::parse)?,
            start_time: row.get(11)?,
            answer_time: row.get(12)?,
            end_time: row.get(13)?,
            duration: row.get(14)?,
            updated_at: row.get(15)?,
        },
    ))
}
