//! SQL both backends share: fragments whose meaning comes from the domain, so that the two
//! backends cannot drift apart on them.
//!
//! May depend on: `domain`, the store's query types.

use super::SortKey;

/// The final call states, as an SQL list (`state NOT IN ...` keeps the active calls).
pub(crate) const FINAL_STATES: &str = "('ANSWERED', 'CANCELLED', 'REJECTED', 'MISSED')";

/// The webhooks with pending deliveries, as `q(webhook_id)`: a loose scan of the queue index
/// (`deliveries_queue`), one probe per webhook rather than a read of every pending row. Append
/// `SELECT ... FROM q ...` to it.
pub(crate) const QUEUES_WITH_PENDING: &str = "WITH RECURSIVE q(webhook_id) AS ( \
       SELECT MIN(webhook_id) FROM deliveries WHERE status = 'pending' \
       UNION ALL \
       SELECT (SELECT MIN(webhook_id) FROM deliveries \
               WHERE status = 'pending' AND webhook_id > q.webhook_id) \
       FROM q WHERE q.webhook_id IS NOT NULL) ";

/// The column a sort key orders by, and whether it holds text (PostgreSQL sorts text by its
/// locale unless told to compare bytes, as SQLite does).
pub(crate) fn sort_column(key: SortKey) -> (&'static str, bool) {
    match key {
        SortKey::StartTime => ("start_time", false),
        SortKey::AnswerTime => ("answer_time", false),
        SortKey::EndTime => ("end_time", false),
        SortKey::Duration => ("duration", false),
        SortKey::State => ("state", true),
        SortKey::Direction => ("direction", true),
        SortKey::PhoneNumber => ("phone_number", true),
        SortKey::ExternalId => ("external_id", true),
        SortKey::Id => ("id", true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CallState;

    #[test]
    fn final_states_sql_matches_the_domain() {
        for state in CallState::ALL {
            assert_eq!(
                FINAL_STATES.contains(&format!("'{}'", state.as_str())),
                state.is_final(),
                "{state:?}"
            );
        }
    }
}
