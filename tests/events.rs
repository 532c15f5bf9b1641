//! The read side of a user token, part two: `/self/events` (every call's latest state) with its
//! filters, date range, paging, sorting and count, and one event.

mod support;

use std::cmp::Ordering;

use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn events_list_every_call_of_the_user_in_its_latest_state_by_start_time_ascending() {
    // Arrange
    let f = calls_fixture().await;

    // Act
    let resp = f.server.get(&vis("/self/events"), &f.me).await;

    // Assert
    resp.expect(200);
    let events = resp.json();
    assert_eq!(
        events,
        json!([
            f.answered_out,
            f.ringing_in,
            f.active_out,
            f.held_in,
            f.missed_in
        ]),
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
    let f = calls_fixture().await;

    // Act
    let resp = f
        .server
        .get(
            &vis(&format!("/self/events/{}", id_of(&f.answered_out))),
            &f.me,
        )
        .await;

    // Assert
    resp.expect(200);
    assert_eq!(resp.json(), json!([f.answered_out]));
}

#[tokio::test]
async fn events_filters_by_direction_states_types_and_paging() {
    // Arrange
    let f = calls_fixture().await;
    let (ans, ring, act, held, miss) = (
        id_of(&f.answered_out),
        id_of(&f.ringing_in),
        id_of(&f.active_out),
        id_of(&f.held_in),
        id_of(&f.missed_in),
    );
    let cases: Vec<(&str, Vec<&String>)> = vec![
        ("?direction=INBOUND", vec![&ring, &held, &miss]),
        ("?direction=OUTBOUND", vec![&ans, &act]),
        (
            "?direction=OUTBOUND,INBOUND",
            vec![&ans, &ring, &act, &held, &miss],
        ),
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
        let got = f
            .server
            .get_json(&vis(&format!("/self/events{query}")), &f.me)
            .await;

        // Assert
        assert_eq!(
            ids_of(&got).iter().collect::<Vec<_>>(),
            want,
            "GET /self/events{query}"
        );
    }
}

#[tokio::test]
async fn events_date_range_applies_to_the_latest_state_change_from_inclusive_to_exclusive() {
    // Arrange: latest changes at T0+70s (answered), +1s (ringing), +20s (active), +40s (held), +50s (missed).
    let f = calls_fixture().await;
    let (ans, ring, act, held, miss) = (
        id_of(&f.answered_out),
        id_of(&f.ringing_in),
        id_of(&f.active_out),
        id_of(&f.held_in),
        id_of(&f.missed_in),
    );
    let cases: Vec<(String, Vec<&String>)> = vec![
        (
            format!("?fromDate={}", T0 + 40_000),
            vec![&ans, &held, &miss],
        ),
        (format!("?toDate={}", T0 + 40_000), vec![&ring, &act]),
        (
            format!("?fromDate={}&toDate={}", T0 + 20_000, T0 + 50_000),
            vec![&act, &held],
        ),
        (
            format!("?fromDate={}&toDate={}", T0 + 20_000, T0 + 20_001),
            vec![&act],
        ),
        (format!("?fromDate={}", T0 + 70_001), vec![]),
        // The answered call started at T0 but changed last at T0+70s: a range around its start misses it.
        (format!("?fromDate={}&toDate={}", T0, T0 + 1_000), vec![]),
    ];

    for (query, want) in cases {
        // Act
        let got = f
            .server
            .get_json(&vis(&format!("/self/events{query}")), &f.me)
            .await;
        let n = f
            .server
            .get_json(&vis(&format!("/self/events/count{query}")), &f.me)
            .await;

        // Assert
        assert_eq!(
            ids_of(&got).iter().collect::<Vec<_>>(),
            want,
            "GET /self/events{query}"
        );
        assert_eq!(
            count_of(&n),
            want.len() as i64,
            "GET /self/events/count{query}"
        );
    }
}

#[tokio::test]
async fn events_count_counts_every_call_with_the_same_filters() {
    // Arrange
    let f = calls_fixture().await;
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
        let got = f
            .server
            .get_json(&vis(&format!("/self/events/count{query}")), &f.me)
            .await;

        // Assert
        assert_eq!(count_of(&got), want, "GET /self/events/count{query}");
    }
}

/// Asserts `events` is ordered by `field` (`desc` reversed), ignoring items without the field.
fn assert_sorted(events: &Value, field: &str, desc: bool, context: &str) {
    let items: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get(field).is_some())
        .collect();
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
        let ok = if desc {
            ord != Ordering::Less
        } else {
            ord != Ordering::Greater
        };
        assert!(
            ok,
            "{context}: {} then {} is not sorted by {field}",
            pair[0][field], pair[1][field]
        );
    }
}

/// Asserts that items with an equal `field` are contiguous (grouped), whatever the group order.
fn assert_grouped(events: &Value, field: &str, context: &str) {
    let values: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e[field])
        .collect();
    let mut seen: Vec<&Value> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 && values[i - 1] == *v {
            continue;
        }
        assert!(
            !seen.contains(v),
            "{context}: {field} values are not grouped: {values:?}"
        );
        seen.push(v);
    }
}

#[tokio::test]
async fn events_sort_by_each_documented_field_in_both_orders() {
    // Arrange: finished calls with distinct times, durations, numbers and external ids.
    let server = Server::start();
    let ingest = server.ingest_token();
    let me = server.user_token(ME.0, ME.1);
    let specs: [(&str, &str, &str, Steps); 5] = [
        (
            "ext-3",
            "OUTBOUND",
            "+14155550103",
            &[("RINGING", 0), ("ACTIVE", 5_000), ("ANSWERED", 35_000)],
        ),
        (
            "ext-1",
            "INBOUND",
            "+14155550105",
            &[("RINGING", 1_000), ("ACTIVE", 2_000), ("ANSWERED", 92_000)],
        ),
        (
            "ext-5",
            "INBOUND",
            "+14155550101",
            &[("RINGING", 2_000), ("MISSED", 9_000)],
        ),
        (
            "ext-2",
            "OUTBOUND",
            "+14155550104",
            &[("RINGING", 3_000), ("CANCELLED", 4_000)],
        ),
        (
            "ext-4",
            "INBOUND",
            "+14155550102",
            &[("RINGING", 4_000), ("ACTIVE", 4_500), ("ANSWERED", 14_500)],
        ),
    ];
    for (ext, direction, phone, steps) in specs {
        for (state, ms) in steps {
            let body = with(
                with(
                    report(ME.0, ME.1, ext, direction, state),
                    "phoneNumber",
                    json!(phone),
                ),
                "at",
                json!(rfc3339(T0 + ms)),
            );
            server.ingest_ok(&ingest, &body).await;
        }
    }

    for field in [
        "startTime",
        "answerTime",
        "endTime",
        "duration",
        "phoneNumber",
        "externalId",
        "state",
        "direction",
        "id",
    ] {
        for order in ["ASC", "DESC"] {
            // Act
            let query = format!("/self/events?sort={field}&order={order}");
            let events = server.get_json(&vis(&query), &me).await;

            // Assert
            assert_eq!(
                events.as_array().map(Vec::len),
                Some(5),
                "{query}: {events}"
            );
            if matches!(field, "state" | "direction" | "id") {
                assert_grouped(&events, field, &query);
            } else {
                assert_sorted(&events, field, order == "DESC", &query);
            }
        }
    }
    let asc = server
        .get_json(&vis("/self/events?sort=state&order=ASC"), &me)
        .await;
    let mut desc = ids_of(
        &server
            .get_json(&vis("/self/events?sort=state&order=DESC"), &me)
            .await,
    );
    desc.reverse();
    let asc_states: Vec<&Value> = asc
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["state"])
        .collect();
    let reversed_desc_states: Vec<Value> = desc
        .iter()
        .map(|i| {
            asc.as_array()
                .unwrap()
                .iter()
                .find(|e| &id_of(e) == i)
                .unwrap()["state"]
                .clone()
        })
        .collect();
    assert_eq!(
        asc_states,
        reversed_desc_states.iter().collect::<Vec<_>>(),
        "DESC is ASC reversed for sort=state"
    );
}

#[tokio::test]
async fn events_query_values_out_of_range_are_refused_with_422_naming_the_parameter() {
    // Arrange
    let f = calls_fixture().await;
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
        let list = f
            .server
            .get(&vis(&format!("/self/events?{query}")), &f.me)
            .await;

        // Assert
        assert_eq!(
            list.expect_validation(),
            [field],
            "GET /self/events?{query}"
        );
    }
    for (query, field) in [
        ("states=TALKING", "states"),
        ("direction=UP", "direction"),
        ("fromDate=x", "fromDate"),
    ] {
        let n = f
            .server
            .get(&vis(&format!("/self/events/count?{query}")), &f.me)
            .await;
        assert_eq!(
            n.expect_validation(),
            [field],
            "GET /self/events/count?{query}"
        );
    }
}

#[tokio::test]
async fn several_bad_query_parameters_are_each_named() {
    // Arrange
    let f = calls_fixture().await;

    // Act
    let resp = f
        .server
        .get(
            &vis("/self/events?size=0&offset=-2&order=NO&sort=nope"),
            &f.me,
        )
        .await;

    // Assert
    assert_eq!(
        resp.expect_validation(),
        ["offset", "order", "size", "sort"]
    );
}
