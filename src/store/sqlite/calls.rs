//! Calls in SQLite: writing a state change with its event and deliveries, and the WHERE and
//! ORDER BY clauses of call queries.

use super::deliveries;
use crate::domain::Timestamp;
use crate::domain::call::Call;
use crate::domain::event::CallEvent;
use crate::domain::identity::Owner;
use crate::store::sql::FINAL_STATES;
use crate::store::{CallFilter, Fresh};
use rusqlite::types::Value;
use rusqlite::{Connection, params};
use std::sync::Arc;

/// The WHERE clause (after the owner) and its parameters for a call filter.
pub(super) fn filter_sql(owner: &Owner, filter: &CallFilter) -> (String, Vec<Value>) {
    let mut sql = String::from("account_id = ? AND user_id = ?");
    let mut args: Vec<Value> = vec![
        owner.account_id.clone().into(),
        owner.user_id.clone().into(),
    ];
    if filter.active_only {
        sql.push_str(&format!(" AND state NOT IN {FINAL_STATES}"));
    }
    let mut any_of = |column: &str, values: Vec<&str>| {
        if !values.is_empty() {
            let marks = vec!["?"; values.len()].join(", ");
            sql.push_str(&format!(" AND {column} IN ({marks})"));
            args.extend(values.into_iter().map(|v| Value::from(v.to_string())));
        }
    };
    any_of(
        "direction",
        filter.directions.iter().map(|d| d.as_str()).collect(),
    );
    any_of("state", filter.states.iter().map(|s| s.as_str()).collect());
    if let Some(from) = filter.from {
        sql.push_str(" AND updated_at >= ?");
        args.push(from.millis().into());
    }
    if let Some(to) = filter.to {
        sql.push_str(" AND updated_at < ?");
        args.push(to.millis().into());
    }
    (sql, args)
}

/// Writes a call's new state, its event and the deliveries it causes (inside the writer's
/// transaction). Returns how many deliveries were queued and how many skipped, and the queued ones
/// for the engine.
pub(super) fn record_change(
    conn: &Connection,
    seq: Option<i64>,
    call: &Call,
    now: Timestamp,
) -> rusqlite::Result<(usize, usize, Vec<Fresh>)> {
    let call_seq = match seq {
        Some(seq) => {
            conn.prepare_cached(
                "UPDATE calls SET state = ?2, answer_time = ?3, end_time = ?4, duration = ?5, updated_at = ?6 WHERE seq = ?1",
            )?
            .execute(params![
                seq,
                call.state.as_str(),
                call.answer_time.map(Timestamp::millis),
                call.end_time.map(Timestamp::millis),
                call.duration,
                call.updated_at.millis()
            ])?;
            seq
        }
        None => {
            conn.prepare_cached(
                "INSERT INTO calls (id, external_id, account_id, user_id, direction, phone_number, caller_id, \
                 internal, ucp_type, state, start_time, answer_time, end_time, duration, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?
            .execute(params![
                call.id,
                call.external_id,
                call.account_id,
                call.user_id,
                call.direction.as_str(),
                call.phone_number,
                call.caller_id,
                call.internal,
                call.ucp_type,
                call.state.as_str(),
                call.start_time.millis(),
                call.answer_time.map(Timestamp::millis),
                call.end_time.map(Timestamp::millis),
                call.duration,
                call.updated_at.millis()
            ])?;
            conn.last_insert_rowid()
        }
    };
    let body: Arc<str> = serde_json::to_string(&CallEvent::from(call))
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
        .into();
    conn.prepare_cached(
        "INSERT INTO call_events (call_seq, state, at, body) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        call_seq,
        call.state.as_str(),
        call.updated_at.millis(),
        &*body
    ])?;
    let event_seq = conn.last_insert_rowid();
    deliveries::queue(
        conn,
        &call.account_id,
        &call.user_id,
        call_seq,
        event_seq,
        &body,
        now,
    )
}
