//! The `Store` contract, written once and run against every backend: black-box tests of the trait
//! called directly through `Arc<dyn Store>`, with explicit `Timestamp`s (nothing sleeps or reads
//! the clock).
//!
//! Each contract test is one `async fn(store: Arc<dyn Store>)` in a module under
//! `store_contract/` (tokens, webhooks, calls, claims, outcomes, upkeep), listed once in
//! [`contract!`] below, which makes it two tests: `sqlite::<name>` on a fresh SQLite file, and
//! `postgres::<name>` on a fresh PostgreSQL database (skipped, with a printed reason, when
//! PostgreSQL is not reachable; a failure under `CI=true`). A test left out of the list is an
//! unused function, which `clippy -D warnings` refuses. See `store_contract/harness.rs`.
//!
//! Behaviour that differs between backends on purpose (which processes drive which queues) is
//! not tested here but in `tests/pg_store.rs`.
//!
//! Run one backend: `cargo nextest run --test store_contract -E 'test(/^sqlite::/)'`.

#[path = "store_contract/calls.rs"]
mod calls;
#[path = "store_contract/claims.rs"]
mod claims;
#[path = "store_contract/fixtures.rs"]
mod fixtures;
#[path = "store_contract/harness.rs"]
mod harness;
#[path = "store_contract/outcomes.rs"]
mod outcomes;
#[path = "store_contract/tokens.rs"]
mod tokens;
#[path = "store_contract/upkeep.rs"]
mod upkeep;
#[path = "store_contract/webhooks.rs"]
mod webhooks;

/// Makes each listed contract test (`module: [test, ...]`) a test on every backend.
macro_rules! contract {
    ($($module:ident: [$($test:ident),+ $(,)?]),+ $(,)?) => {
        /// The contract on SQLite: a new database file per test.
        mod sqlite {
            $($(
                #[tokio::test]
                async fn $test() {
                    crate::harness::on_sqlite(crate::$module::$test).await;
                }
            )+)+
        }

        /// The contract on PostgreSQL: a new database per test, when PostgreSQL is reachable.
        mod postgres {
            $($(
                #[tokio::test]
                async fn $test() {
                    crate::harness::on_postgres(crate::$module::$test).await;
                }
            )+)+
        }
    };
}

contract! {
    tokens: [
        a_fresh_store_answers_ping,
        created_tokens_are_listed_as_created_and_unrevoked,
        a_live_token_authenticates_as_its_principal,
        an_expired_token_is_refused_from_its_expiry_on,
        a_revoked_token_is_refused_and_cannot_be_revoked_again,
        a_token_with_a_profile_creates_its_user_and_account,
        later_profiles_fill_in_fields_and_never_erase_them,
        user_by_number_finds_the_user_with_that_number_in_that_account,
    ],
    webhooks: [
        a_created_webhook_reads_back_exactly_as_given,
        webhooks_are_listed_per_owner_in_creation_order,
        creating_at_the_cap_stores_nothing_and_says_so,
        another_owners_webhook_can_be_neither_read_nor_deleted_nor_renewed,
        deleting_a_webhook_removes_it_and_its_waiting_deliveries,
        renewing_moves_the_dates_and_clears_failed_but_keeps_the_statistics,
        purging_deletes_webhooks_whose_purge_at_has_come,
    ],
    calls: [
        a_legal_sequence_moves_the_call_and_keeps_its_times,
        a_report_without_a_time_happens_at_now,
        a_refused_report_changes_nothing_and_queues_nothing,
        a_repeated_report_is_a_repeat_and_queues_nothing,
        calls_are_filtered_and_counted_per_owner,
        calls_are_sorted_by_every_key_both_ways,
        calls_are_paged,
        a_call_is_found_by_id_only_by_its_owner,
    ],
    claims: [
        an_event_queues_one_delivery_per_live_webhook_and_skips_the_others,
        nothing_is_claimed_for_a_webhook_that_expired_after_queueing,
        a_job_carries_a_signing_key_only_when_it_must_be_signed,
        only_the_first_waiting_event_of_each_call_is_claimed_per_webhook,
        a_claim_takes_the_oldest_first_up_to_its_limit,
        a_queue_reads_in_order_a_page_at_a_time,
        each_start_counts_one_attempt_and_only_pending_deliveries_start,
        released_deliveries_keep_their_attempts,
    ],
    outcomes: [
        a_delivery_that_succeeds_after_retries_counts_once,
        a_batch_of_successes_counts_each_delivery,
        a_final_failure_counts_once_marks_the_webhook_failed_and_skips_the_rest,
        attempts_in_flight_when_the_webhook_fails_are_not_retried,
        a_retry_holds_the_webhooks_other_deliveries_until_a_success,
        a_final_failure_after_a_pause_skips_everything_held,
    ],
    upkeep: [
        skipping_undeliverable_skips_the_waiting_deliveries_of_expired_webhooks,
        a_webhook_that_expires_while_paused_keeps_its_events_for_a_replay,
        a_replay_is_refused_for_strangers_and_for_webhooks_that_are_not_live,
        a_replay_after_renewal_requeues_the_skipped_deliveries,
        a_replay_since_an_instant_requeues_only_events_from_then_on,
        the_backlog_counts_waiting_deliveries_and_the_oldest,
        the_backlog_counts_what_a_paused_webhook_holds,
    ],
}
