//! Calls in PostgreSQL: applying a state-change report (the call, its event and the deliveries it
//! causes, in one transaction), and the WHERE and ORDER BY clauses of call queries.
//!
//! Several nodes may apply reports of one call at once. The call row is locked (`FOR UPDATE`)
//! before the state machine runs, and a new call is inserted with `ON CONFLICT DO NOTHING` and
//! then read again under the lock, so reports of one call are applied one after the other and
//! [`call::apply`] always sees the latest state. This also keeps the events (and so the delivery
//! rows) of one call in `seq` order, which the claim's per-call order relies on.

use super::deliveries::{self, QueuedRows};
use super::rows::{self, CALL_COLUMNS};
use crate::domain::Timestamp;
use crate::domain::call::{self, Applied, Call, TransitionError};
use crate::domain::event::CallEvent;
use crate::domain::identity::Owner;
use crate::domain::report::CallReport;
use crate::store::sql::{self, FINAL_STATES};
use crate::store::{ApplyOutcome, CallFilter, SortKey};
use sqlx::PgConnection;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use std::sync::Arc;

/// A query parameter of a call filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Arg {
    Text(String),
    Int(i64),
}

/// Binds `args`, in order, to `query`.
pub(super) fn bind_all<'q>(
    mut query: Query<'q, sqlx::Postgres, PgArguments>,
    args: &'q [Arg],
) -> Query<'q, sqlx::Postgres, PgArguments> {
    for arg in args {
        query = match arg {
            Arg::Text(s) => query.bind(s.as_str()),
            Arg::Int(n) => query.bind(*n),
        };
    }
    query
}

/// The WHERE clause (starting with the owner) and its parameters, numbered from `$1`.
pub(super) fn filter_sql(owner: &Owner, filter: &CallFilter) -> (String, Vec<Arg>) {
    let mut args = vec![
        Arg::Text(owner.account_id.clone()),
        Arg::Text(owner.user_id.clone()),
    ];
    let mut sql = String::from("account_id = $1 AND user_id = $2");
    if filter.active_only {
        sql.push_str(&format!(" AND state NOT IN {FINAL_STATES}"));
    }
    let mut any_of = |column: &str, values: Vec<&str>| {
        if !values.is_empty() {
            let marks: Vec<String> = (0..values.len())
                .map(|i| format!("${}", args.len() + 1 + i))
                .collect();
            sql.push_str(&format!(" AND {column} IN ({})", marks.join(", ")));
            args.extend(values.into_iter().map(|v| Arg::Text(v.to_string())));
        }
    };
    any_of(
        "direction",
        filter.directions.iter().map(|d| d.as_str()).collect(),
    );
    any_of("state", filter.states.iter().map(|s| s.as_str()).collect());
    if let Some(from) = filter.from {
        args.push(Arg::Int(from.millis()));
        sql.push_str(&format!(" AND updated_at >= ${}", args.len()));
    }
    if let Some(to) = filter.to {
        args.push(Arg::Int(to.millis()));
        sql.push_str(&format!(" AND updated_at < ${}", args.len()));
    }
    (sql, args)
}

/// The ORDER BY expression of a sort key, sorting as SQLite does: text byte-wise
/// (`COLLATE "C"`, not the database's locale), and NULL as the smallest value (PostgreSQL puts
/// NULL last in ascending order).
pub(super) fn sort_expr(key: SortKey, descending: bool) -> String {
    let (column, text) = sql::sort_column(key);
    let collate = if text { " COLLATE \"C\"" } else { "" };
    let order = if descending {
        "DESC NULLS LAST"
    } else {
        "ASC NULLS FIRST"
    };
    format!("{column}{collate} {order}")
}

/// Applies a report inside the caller's transaction, for node `node`. The inner error is a
/// refused report, which changed nothing. Also returns what the queued deliveries need done after
/// the commit.
pub(super) async fn apply_report(
    c: &mut PgConnection,
    node: &str,
    report: &CallReport,
    now: Timestamp,
) -> Result<Result<(ApplyOutcome, QueuedRows), TransitionError>, sqlx::Error> {
    // A second round only when another transaction created the call between our read and our
    // insert; its row is committed (the insert waited for it), so the next read finds it.
    for _ in 0..2 {
        let existing = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE account_id = $1 AND external_id = $2 FOR UPDATE"
        ))
        .bind(&report.account_id)
        .bind(&report.external_id)
        .fetch_optional(&mut *c)
        .await?
        .as_ref()
        .map(rows::call)
        .transpose()?;
        let (seq, current) = existing.unzip();
        let applied = match call::apply(
            current.as_ref(),
            report,
            || uuid::Uuid::now_v7().to_string(),
            now,
        ) {
            Ok(applied) => applied,
            Err(refused) => return Ok(Err(refused)),
        };
        let Applied::Changed(next) = &applied else {
            let outcome = ApplyOutcome {
                applied,
                deliveries: 0,
                skipped: 0,
            };
            return Ok(Ok((outcome, QueuedRows::default())));
        };
        let call_seq = match seq {
            Some(seq) => {
                update(c, seq, next).await?;
                seq
            }
            None => match insert(c, next).await? {
                Some(seq) => seq,
                None => continue,
            },
        };
        let queued = record_event(c, node, call_seq, next, now).await?;
        let outcome = ApplyOutcome {
            applied,
            deliveries: queued.pending,
            skipped: queued.skipped,
        };
        return Ok(Ok((outcome, queued)));
    }
    Err(sqlx::Error::Protocol(format!(
        "call {} of account {} was created concurrently but cannot be read",
        report.external_id, report.account_id
    )))
}

async fn update(c: &mut PgConnection, seq: i64, call: &Call) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE calls SET state = $2, answer_time = $3, end_time = $4, duration = $5, updated_at = $6 \
         WHERE seq = $1",
    )
    .bind(seq)
    .bind(call.state.as_str())
    .bind(call.answer_time.map(Timestamp::millis))
    .bind(call.end_time.map(Timestamp::millis))
    .bind(call.duration)
    .bind(call.updated_at.millis())
    .execute(c)
    .await?;
    Ok(())
}

/// Inserts a new call; `None` when another transaction created it first.
async fn insert(c: &mut PgConnection, call: &Call) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO calls (id, external_id, account_id, user_id, direction, phone_number, caller_id, \
         internal, ucp_type, state, start_time, answer_time, end_time, duration, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (account_id, external_id) DO NOTHING RETURNING seq",
    )
    .bind(&call.id)
    .bind(&call.external_id)
    .bind(&call.account_id)
    .bind(&call.user_id)
    .bind(call.direction.as_str())
    .bind(&call.phone_number)
    .bind(&call.caller_id)
    .bind(call.internal)
    .bind(&call.ucp_type)
    .bind(call.state.as_str())
    .bind(call.start_time.millis())
    .bind(call.answer_time.map(Timestamp::millis))
    .bind(call.end_time.map(Timestamp::millis))
    .bind(call.duration)
    .bind(call.updated_at.millis())
    .fetch_optional(c)
    .await
}

/// Records the call's new state as an event and queues its deliveries.
async fn record_event(
    c: &mut PgConnection,
    node: &str,
    call_seq: i64,
    call: &Call,
    now: Timestamp,
) -> Result<QueuedRows, sqlx::Error> {
    let body: Arc<str> = serde_json::to_string(&CallEvent::from(call))
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?
        .into();
    let event_seq: i64 = sqlx::query_scalar(
        "INSERT INTO call_events (call_seq, state, at, body) VALUES ($1, $2, $3, $4) RETURNING seq",
    )
    .bind(call_seq)
    .bind(call.state.as_str())
    .bind(call.updated_at.millis())
    .bind(&*body)
    .fetch_one(&mut *c)
    .await?;
    let owner = (call.account_id.as_str(), call.user_id.as_str(), call_seq);
    deliveries::queue(c, node, owner, (event_seq, &body), now).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CallState;
    use crate::domain::call::Direction;

    #[test]
    fn filter_parameters_are_numbered_in_the_order_they_are_bound() {
        let owner = Owner {
            account_id: "acc".into(),
            user_id: "u".into(),
        };
        let filter = CallFilter {
            active_only: true,
            directions: vec![Direction::Inbound],
            states: vec![CallState::Ringing, CallState::Active],
            from: Timestamp::from_millis(10),
            to: Timestamp::from_millis(20),
        };
        let (sql, args) = filter_sql(&owner, &filter);
        assert_eq!(
            sql,
            "account_id = $1 AND user_id = $2 AND state NOT IN ('ANSWERED', 'CANCELLED', \
             'REJECTED', 'MISSED') AND direction IN ($3) AND state IN ($4, $5) \
             AND updated_at >= $6 AND updated_at < $7"
        );
        let text = |s: &str| Arg::Text(s.into());
        assert_eq!(
            args,
            [
                text("acc"),
                text("u"),
                text("INBOUND"),
                text("RINGING"),
                text("ACTIVE"),
                Arg::Int(10),
                Arg::Int(20)
            ]
        );
    }

    #[test]
    fn sorting_puts_missing_times_first_ascending_and_compares_text_bytewise() {
        assert_eq!(
            sort_expr(SortKey::AnswerTime, false),
            "answer_time ASC NULLS FIRST"
        );
        assert_eq!(
            sort_expr(SortKey::EndTime, true),
            "end_time DESC NULLS LAST"
        );
        assert_eq!(
            sort_expr(SortKey::PhoneNumber, false),
            "phone_number COLLATE \"C\" ASC NULLS FIRST"
        );
    }
}
