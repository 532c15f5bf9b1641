//! Calls in PostgreSQL: the WHERE and ORDER BY clauses of call queries. (Reports are applied by
//! [`super::ingest`].)

use crate::domain::identity::Owner;
use crate::store::sql::{self, FINAL_STATES};
use crate::store::{CallFilter, SortKey};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::call::Direction;
    use crate::domain::{CallState, Timestamp};

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
