//! The read side of a user token: `/self`, `/self/account`, `/self/calls` (active calls, count,
//! one call) and `/self/events` (every call's latest state, filters, paging, sorting, count, one).

mod support;

use std::cmp::Ordering;

use serde_json::{Value, json};
use support::*;

/// Reports `steps` (state, ms after T0) for one call of (account, user); returns the last event.
async fn call(
    server: &Server,
    ingest: &str,
    (account, user): (&str, &str),
    ext: &str,
    direction: &str,
    steps: &[(&str, i64)],
) -> Value {
    let mut last = Value::Null;
    for (state, ms) in steps {
        let body = with(report(account, user, ext, direction, state), "at", json!(rfc3339(T0 + ms)));
        last = server.ingest_ok(ingest, &body).await;
    }
    last
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array: {v}"))
        .iter()
        .map(|e| e["id"].as_str().expect("string id").to_string())
        .collect()
}

fn id(e: &Value) -> String {
    e["id"].as_str().expect("string id").to_string()
}

fn count(v: &Value) -> i64 {
    assert_eq!(v.as_object().map(|o| o.len()), Some(1), "count body is exactly {{\"count\": n}}: {v}");
    v["count"].as_i64().unwrap_or_else(|| panic!("count must be an integer: {v}"))
}

const ME: (&str, &str) = ("a1", "u1");

/// A user with three live calls, one answered, one missed, plus a colleague's and a stranger's calls.
struct Fixture {
    server: Server,
    me: String,
    ringing_in: Value,  // INBOUND RINGING, started T0+1s
    active_out: Value,  // OUTBOUND ACTIVE, started T0+2s
    held_in: Value,     // INBOUND HELD, started T0+3s
    answered_out: Value, // OUTBOUND ANSWERED, started T0
    missed_in: Value,   // INBOUND MISSED, started T0+4s
}

async fn fixture() -> Fixture {
    let server = Server::start();
    let ingest = server.ingest_token();
    let me = server.user_token(ME.0, ME.1);
    let answered_out =
        call(&server, &ingest, ME, "ans", "OUTBOUND", &[("RINGING", 0), ("ACTIVE", 10_000), ("ANSWERED", 70_000)]).await;
    let ringing_in = call(&server, &ingest, ME, "ring", "INBOUND", &[("RINGING", 1_000)]).await;
    let active_out = call(&server, &ingest, ME, "act", "OUTBOUND", &[("RINGING", 2_000), ("ACTIVE", 20_000)]).await;
    let held_in =
        call(&server, &ingest, ME, "held", "INBOUND", &[("RINGING", 3_000), ("ACTIVE", 30_000), ("HELD", 40_000)]).await;
    let missed_in = call(&server, &ingest, ME, "miss", "INBOUND", &[("RINGING", 4_000), ("MISSED", 50_000)]).await;
    call(&server, &ingest, ("a1", "u2"), "colleague", "INBOUND", &[("RINGING", 500), ("ACTIVE", 600)]).await;
    call(&server, &ingest, ("a2", "u1"), "stranger", "INBOUND", &[("RINGING", 500), ("ACTIVE", 600)]).await;
    Fixture { server, me, ringing_in, active_out, held_in, answered_out, missed_in }
}

// ---- /self and /self/account ----

#[tokio::test]
async fn self_describes_the_user_named_by_the_token() {
    // Arrange
    let server = Server::start();
    let token = server.token_create(&[
        "--account", "257073", "--user", "522078", "--first-name", "Robert", "--last-name", "Smith",
        "--email", "john.smith@example.com", "--account-name", "Vonage",
    ]);

    // Act
    let resp = server.get(&vis("/self"), &token).await;

    // Assert
    resp.expect(200);
    let me = resp.json();
    assert_eq!(me["id"], "522078");
    assert_eq!(me["accountId"], "257073");
    assert_eq!(me["acountLabel"], "Vonage", "the spec's own spelling");
    assert_eq!(me["firstName"], "Robert");
    assert_eq!(me["lastName"], "Smith");
    assert_eq!(me["emailAddress"], "john.smith@example.com");
    assert_eq!(me["status"], "ACTIVE");
    assert!(me["ucis"].is_array(), "{me}");
    assert_eq!(me["roles"], json!([{"code": "AU", "name": "Account User"}]));
    assert_keys_follow(
        &keys(&resp.text, ""),
        &["id", "accountId", "acountLabel", "firstName", "lastName", "emailAddress", "contactNumber", "status", "ucis", "roles"],
        "GET /self",
    );
    assert_no_nulls(&me, "GET /self");
}

#[tokio::test]
async fn self_leaves_out_profile_fields_the_token_did_not_give() {
    // Arrange
    let server = Server::start();
    let token = server.user_token("a1", "u1");

    // Act
    let me = server.get_json(&vis("/self"), &token).await;

    // Assert
    assert_eq!(me["id"], "u1");
    assert_eq!(me["accountId"], "a1");
    for absent in ["firstName", "lastName", "emailAddress", "contactNumber"] {
        assert!(me.get(absent).is_none(), "{absent} must be omitted when unknown: {me}");
    }
    assert_no_nulls(&me, "GET /self");
}

#[tokio::test]
async fn self_account_describes_the_tokens_account() {
    // Arrange
    let server = Server::start();
    let token = server.token_create(&["--account", "257073", "--user", "522078", "--account-name", "Vonage"]);

    // Act
    let resp = server.get(&vis("/self/account"), &token).await;

    // Assert
    resp.expect(200);
    let account = resp.json();
    assert_eq!(account["id"], "257073");
    assert_eq!(account["name"], "Vonage");
    assert_eq!(account["status"], "ACTIVE");
    assert!(account["ucis"].is_array(), "{account}");
    assert_keys_follow(&keys(&resp.text, ""), &["id", "name", "org", "ucis", "status"], "GET /self/account");
    assert_no_nulls(&account, "GET /self/account");
}

// ---- /self/calls ----

#[tokio::test]
async fn calls_lists_only_the_users_live_calls_newest_first() {
    // Arrange
    let f = fixture().await;

    // Act
    let resp = f.server.get(&vis("/self/calls"), &f.me).await;

    // Assert
    resp.expect(200);
    let calls = resp.json();
    assert_eq!(ids(&calls), [id(&f.held_in), id(&f.active_out), id(&f.ringing_in)], "non-final calls, DESC by startTime");
    assert_eq!(calls[0], f.held_in, "each call is the latest event object");
    assert_eq!(calls[1], f.active_out);
}

#[tokio::test]
async fn calls_order_direction_and_paging_filters_apply() {
    // Arrange
    let f = fixture().await;
    let (ring, act, held) = (id(&f.ringing_in), id(&f.active_out), id(&f.held_in));
    let cases: Vec<(&str, Vec<&String>)> = vec![
        ("?order=ASC", vec![&ring, &act, &held]),
        ("?order=DESC", vec![&held, &act, &ring]),
        ("?direction=INBOUND", vec![&held, &ring]),
        ("?direction=OUTBOUND", vec![&act]),
        ("?direction=INBOUND,OUTBOUND", vec![&held, &act, &ring]),
        ("?size=2", vec![&held, &act]),
        ("?size=2&offset=0", vec![&held, &act]),
        ("?size=2&offset=1", vec![&ring]),
        ("?size=2&offset=2", vec![]),
        ("?size=1&offset=1&order=ASC", vec![&act]),
        ("?direction=INBOUND&order=ASC&size=1", vec![&ring]),
        ("?size=1000", vec![&held, &act, &ring]),
        ("?unknownParam=1", vec![&held, &act, &ring]),
    ];

    for (query, want) in cases {
        // Act
        let got = f.server.get_json(&vis(&format!("/self/calls{query}")), &f.me).await;

        // Assert
        assert_eq!(ids(&got).iter().collect::<Vec<_>>(), want, "GET /self/calls{query}");
    }
}

#[tokio::test]
async fn calls_query_values_out_of_range_are_refused_with_422_naming_the_parameter() {
    // Arrange
    let f = fixture().await;
    let cases = [
        ("size=0", "size"),
        ("size=1001", "size"),
        ("size=-1", "size"),
        ("size=ten", "size"),
        ("offset=-1", "offset"),
        ("offset=1.5", "offset"),
        ("order=UP", "order"),
        ("direction=SIDEWAYS", "direction"),
        ("direction=INBOUND,NOPE", "direction"),
    ];

    for (query, field) in cases {
        // Act
        let resp = f.server.get(&vis(&format!("/self/calls?{query}")), &f.me).await;

        // Assert
        assert_eq!(resp.expect_validation(), [field], "GET /self/calls?{query}");
    }
}

#[tokio::test]
async fn calls_count_defaults_to_active_calls_and_filters_by_states_and_direction() {
    // Arrange
    let f = fixture().await;
    let cases = [
        ("", 1),
        ("?states=ACTIVE", 1),
        ("?states=RINGING", 1),
        ("?states=ACTIVE,RINGING", 2),
        ("?states=RINGING,ACTIVE,HELD", 3),
        ("?states=HELD&direction=OUTBOUND", 0),
        ("?states=RINGING,ACTIVE,HELD&direction=INBOUND", 2),
        ("?direction=OUTBOUND", 1),
        ("?states=INITIALIZING,REMOTE_HELD", 0),
    ];

    for (query, want) in cases {
        // Act
        let got = f.server.get_json(&vis(&format!("/self/calls/count{query}")), &f.me).await;

        // Assert
        assert_eq!(count(&got), want, "GET /self/calls/count{query}");
    }
}

#[tokio::test]
async fn calls_count_refuses_unknown_states_and_directions_with_422() {
    // Arrange
    let f = fixture().await;

    for (query, field) in [("states=TALKING", "states"), ("states=ACTIVE,NOPE", "states"), ("direction=UP", "direction")] {
        // Act
        let resp = f.server.get(&vis(&format!("/self/calls/count?{query}")), &f.me).await;

        // Assert
        assert_eq!(resp.expect_validation(), [field], "GET /self/calls/count?{query}");
    }
}

#[tokio::test]
async fn one_call_is_an_array_holding_it_in_any_state() {
    // Arrange
    let f = fixture().await;

    for event in [&f.ringing_in, &f.held_in, &f.answered_out, &f.missed_in] {
        // Act
        let resp = f.server.get(&vis(&format!("/self/calls/{}", id(event))), &f.me).await;

        // Assert
        resp.expect(200);
        assert_eq!(resp.json(), json!([event]));
    }
}

#[tokio::test]
async fn unknown_and_foreign_call_ids_are_404_without_a_leak() {
    // Arrange
    let f = fixture().await;
    let colleague = f.server.user_token("a1", "u2");
    let stranger = f.server.user_token("a2", "u1");
    let mine = id(&f.held_in);

    for (token, path) in [
        (&colleague, format!("/self/calls/{mine}")),
        (&stranger, format!("/self/calls/{mine}")),
        (&colleague, format!("/self/events/{mine}")),
        (&stranger, format!("/self/events/{mine}")),
        (&f.me, "/self/calls/does-not-exist".to_string()),
        (&f.me, "/self/events/does-not-exist".to_string()),
        (&f.me, "/self/calls/999999999".to_string()),
    ] {
        // Act
        let resp = f.server.get(&vis(&path), token).await;

        // Assert
        resp.expect_error(404, "NOT_FOUND");
        assert!(!resp.text.contains("+14155550100") && !resp.text.contains("held"), "leak: {resp:?}");
    }
}

#[tokio::test]
async fn users_never_see_each_others_calls_or_events() {
    // Arrange
    let f = fixture().await;
    let colleague = f.server.user_token("a1", "u2");
    let stranger = f.server.user_token("a2", "u1");

    for token in [&colleague, &stranger] {
        // Act
        let calls = f.server.get_json(&vis("/self/calls"), token).await;
        let events = f.server.get_json(&vis("/self/events"), token).await;
        let n = f.server.get_json(&vis("/self/events/count"), token).await;

        // Assert
        assert_eq!(calls.as_array().map(Vec::len), Some(1), "only their own call: {calls}");
        assert_eq!(events.as_array().map(Vec::len), Some(1), "only their own call: {events}");
        assert_eq!(count(&n), 1);
        let mine: Vec<String> = [&f.ringing_in, &f.active_out, &f.held_in, &f.answered_out, &f.missed_in]
            .iter()
            .map(|e| id(e))
            .collect();
        assert!(ids(&events).iter().all(|i| !mine.contains(i)), "{events}");
    }
}

// ---- /self/events ----

#[tokio::test]
async fn events_list_every_call_of_the_user_in_its_latest_state_by_start_time_ascending() {
    // Arrange
    let f = fixture().await;

    // Act
    let resp = f.server.get(&vis("/self/events"), &f.me).await;

    // Assert
    resp.expect(200);
    let events = resp.json();
    assert_eq!(
        events,
        json!([f.answered_out, f.ringing_in, f.active_out, f.held_in, f.missed_in]),
        "all calls, latest state, ASC by startTime"
    );
    for i in 0..5 {
        let k = keys(&resp.text, &format!("/{i}"));
        let mut sorted = k.clone();
        sorted.sort();
        assert_eq!(k, sorted, "event keys are alphabetical");
    }
}

#[tokio::test]
async fn one_event_is_an_array_holding_the_latest_state() {
    // Arrange
    let f = fixture().await;

    // Act
    let resp = f.server.get(&vis(&format!("/self/events/{}", id(&f.answered_out))), &f.me).await;

    // Assert
    resp.expect(200);
    assert_eq!(resp.json(), json!([f.answered_out]));
}

#[tokio::test]
async fn events_filters_by_direction_states_types_and_paging() {
    // Arrange
    let f = fixture().await;
    let (ans, ring, act, held, miss) =
        (id(&f.answered_out), id(&f.ringing_in), id(&f.active_out), id(&f.held_in), id(&f.missed_in));
    let cases: Vec<(&str, Vec<&String>)> = vec![
        ("?direction=INBOUND", vec![&ring, &held, &miss]),
        ("?direction=OUTBOUND", vec![&ans, &act]),
        ("?direction=OUTBOUND,INBOUND", vec![&ans, &ring, &act, &held, &miss]),
        ("?states=ANSWERED,MISSED", vec![&ans, &miss]),
        ("?states=ACTIVE", vec![&act]),
        ("?states=HELD,RINGING&direction=INBOUND", vec![&ring, &held]),
        ("?types=CALL", vec![&ans, &ring, &act, &held, &miss]),
        ("?order=DESC", vec![&miss, &held, &act, &ring, &ans]),
        ("?size=2", vec![&ans, &ring]),
        ("?size=2&offset=1", vec![&act, &held]),
        ("?size=2&offset=2", vec![&miss]),
        ("?size=2&offset=3", vec![]),
        ("?size=2&offset=1&order=DESC", vec![&act, &ring]),
        ("?whatever=1", vec![&ans, &ring, &act, &held, &miss]),
    ];

    for (query, want) in cases {
        // Act
        let got = f.server.get_json(&vis(&format!("/self/events{query}")), &f.me).await;

        // Assert
        assert_eq!(ids(&got).iter().collect::<Vec<_>>(), want, "GET /self/events{query}");
    }
}

#[tokio::test]
async fn events_date_range_applies_to_the_latest_state_change_from_inclusive_to_exclusive() {
    // Arrange: latest changes at T0+70s (answered), +1s (ringing), +20s (active), +40s (held), +50s (missed).
    let f = fixture().await;
    let (ans, ring, act, held, miss) =
        (id(&f.answered_out), id(&f.ringing_in), id(&f.active_out), id(&f.held_in), id(&f.missed_in));
    let cases: Vec<(String, Vec<&String>)> = vec![
        (format!("?fromDate={}", T0 + 40_000), vec![&ans, &held, &miss]),
        (format!("?toDate={}", T0 + 40_000), vec![&ring, &act]),
        (format!("?fromDate={}&toDate={}", T0 + 20_000, T0 + 50_000), vec![&act, &held]),
        (format!("?fromDate={}&toDate={}", T0 + 20_000, T0 + 20_001), vec![&act]),
        (format!("?fromDate={}", T0 + 70_001), vec![]),
        // The answered call started at T0 but changed last at T0+70s: a range around its start misses it.
        (format!("?fromDate={}&toDate={}", T0, T0 + 1_000), vec![]),
    ];

    for (query, want) in cases {
        // Act
        let got = f.server.get_json(&vis(&format!("/self/events{query}")), &f.me).await;
        let n = f.server.get_json(&vis(&format!("/self/events/count{query}")), &f.me).await;

        // Assert
        assert_eq!(ids(&got).iter().collect::<Vec<_>>(), want, "GET /self/events{query}");
        assert_eq!(count(&n), want.len() as i64, "GET /self/events/count{query}");
    }
}

#[tokio::test]
async fn events_count_counts_every_call_with_the_same_filters() {
    // Arrange
    let f = fixture().await;
    let cases = [
        ("", 5),
        ("?states=ANSWERED", 1),
        ("?states=ANSWERED,MISSED,RINGING", 3),
        ("?direction=INBOUND", 3),
        ("?direction=OUTBOUND&states=ACTIVE", 1),
        ("?types=CALL", 5),
    ];

    for (query, want) in cases {
        // Act
        let got = f.server.get_json(&vis(&format!("/self/events/count{query}")), &f.me).await;

        // Assert
        assert_eq!(count(&got), want, "GET /self/events/count{query}");
    }
}

/// Asserts `events` is ordered by `field` (`desc` reversed), ignoring items without the field.
fn assert_sorted(events: &Value, field: &str, desc: bool, context: &str) {
    let items: Vec<&Value> = events.as_array().unwrap().iter().filter(|e| e.get(field).is_some()).collect();
    let cmp = |a: &Value, b: &Value| -> Ordering {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_i64().cmp(&y.as_i64()),
            (Value::String(x), Value::String(y)) if field.ends_with("Time") => {
                parse_event_time(x).cmp(&parse_event_time(y))
            }
            (Value::String(x), Value::String(y)) => x.cmp(y),
            _ => panic!("cannot compare {a} and {b}"),
        }
    };
    for pair in items.windows(2) {
        let ord = cmp(&pair[0][field], &pair[1][field]);
        let ok = if desc { ord != Ordering::Less } else { ord != Ordering::Greater };
        assert!(ok, "{context}: {} then {} is not sorted by {field}", pair[0][field], pair[1][field]);
    }
}

/// Asserts that items with an equal `field` are contiguous (grouped), whatever the group order.
fn assert_grouped(events: &Value, field: &str, context: &str) {
    let values: Vec<&Value> = events.as_array().unwrap().iter().map(|e| &e[field]).collect();
    let mut seen: Vec<&Value> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 && values[i - 1] == *v {
            continue;
        }
        assert!(!seen.contains(v), "{context}: {field} values are not grouped: {values:?}");
        seen.push(v);
    }
}

#[tokio::test]
async fn events_sort_by_each_documented_field_in_both_orders() {
    // Arrange: finished calls with distinct times, durations, numbers and external ids.
    let server = Server::start();
    let ingest = server.ingest_token();
    let me = server.user_token(ME.0, ME.1);
    let specs: [(&str, &str, &str, &[(&str, i64)]); 5] = [
        ("ext-3", "OUTBOUND", "+14155550103", &[("RINGING", 0), ("ACTIVE", 5_000), ("ANSWERED", 35_000)]),
        ("ext-1", "INBOUND", "+14155550105", &[("RINGING", 1_000), ("ACTIVE", 2_000), ("ANSWERED", 92_000)]),
        ("ext-5", "INBOUND", "+14155550101", &[("RINGING", 2_000), ("MISSED", 9_000)]),
        ("ext-2", "OUTBOUND", "+14155550104", &[("RINGING", 3_000), ("CANCELLED", 4_000)]),
        ("ext-4", "INBOUND", "+14155550102", &[("RINGING", 4_000), ("ACTIVE", 4_500), ("ANSWERED", 14_500)]),
    ];
    for (ext, direction, phone, steps) in specs {
        for (state, ms) in steps {
            let body = with(
                with(report(ME.0, ME.1, ext, direction, state), "phoneNumber", json!(phone)),
                "at",
                json!(rfc3339(T0 + ms)),
            );
            server.ingest_ok(&ingest, &body).await;
        }
    }

    for field in ["startTime", "answerTime", "endTime", "duration", "phoneNumber", "externalId", "state", "direction", "id"] {
        for order in ["ASC", "DESC"] {
            // Act
            let query = format!("/self/events?sort={field}&order={order}");
            let events = server.get_json(&vis(&query), &me).await;

            // Assert
            assert_eq!(events.as_array().map(Vec::len), Some(5), "{query}: {events}");
            if matches!(field, "state" | "direction" | "id") {
                assert_grouped(&events, field, &query);
            } else {
                assert_sorted(&events, field, order == "DESC", &query);
            }
        }
    }
    let asc = server.get_json(&vis("/self/events?sort=state&order=ASC"), &me).await;
    let mut desc = ids(&server.get_json(&vis("/self/events?sort=state&order=DESC"), &me).await);
    desc.reverse();
    let asc_states: Vec<&Value> = asc.as_array().unwrap().iter().map(|e| &e["state"]).collect();
    let reversed_desc_states: Vec<Value> = desc
        .iter()
        .map(|i| asc.as_array().unwrap().iter().find(|e| &id(e) == i).unwrap()["state"].clone())
        .collect();
    assert_eq!(asc_states, reversed_desc_states.iter().collect::<Vec<_>>(), "DESC is ASC reversed for sort=state");
}

#[tokio::test]
async fn events_query_values_out_of_range_are_refused_with_422_naming_the_parameter() {
    // Arrange
    let f = fixture().await;
    let cases = [
        ("size=0", "size"),
        ("size=1001", "size"),
        ("size=abc", "size"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("order=SIDEWAYS", "order"),
        ("sort=colour", "sort"),
        ("states=TALKING", "states"),
        ("direction=UP", "direction"),
        ("types=SMS", "types"),
        ("fromDate=yesterday", "fromDate"),
        ("toDate=2024-05-01", "toDate"),
    ];

    for (query, field) in cases {
        // Act
        let list = f.server.get(&vis(&format!("/self/events?{query}")), &f.me).await;

        // Assert
        assert_eq!(list.expect_validation(), [field], "GET /self/events?{query}");
    }
    for (query, field) in [("states=TALKING", "states"), ("direction=UP", "direction"), ("fromDate=x", "fromDate")] {
        let n = f.server.get(&vis(&format!("/self/events/count?{query}")), &f.me).await;
        assert_eq!(n.expect_validation(), [field], "GET /self/events/count?{query}");
    }
}

#[tokio::test]
async fn several_bad_query_parameters_are_each_named() {
    // Arrange
    let f = fixture().await;

    // Act
    let resp = f.server.get(&vis("/self/events?size=0&offset=-2&order=NO&sort=nope"), &f.me).await;

    // Assert
    assert_eq!(resp.expect_validation(), ["offset", "order", "size", "sort"]);
}
