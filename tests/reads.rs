//! The read side of a user token, part one: `/self`, `/self/account` and `/self/calls` (live
//! calls, their count, one call), and what one user can never see of another.

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn self_describes_the_user_named_by_the_token() {
    // Arrange
    let server = Server::start();
    let token = server.token_create(&[
        "--account",
        "257073",
        "--user",
        "522078",
        "--first-name",
        "Robert",
        "--last-name",
        "Smith",
        "--email",
        "john.smith@example.com",
        "--account-name",
        "Vonage",
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
        &[
            "id",
            "accountId",
            "acountLabel",
            "firstName",
            "lastName",
            "emailAddress",
            "contactNumber",
            "status",
            "ucis",
            "roles",
        ],
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
        assert!(
            me.get(absent).is_none(),
            "{absent} must be omitted when unknown: {me}"
        );
    }
    assert_no_nulls(&me, "GET /self");
}

#[tokio::test]
async fn self_account_describes_the_tokens_account() {
    // Arrange
    let server = Server::start();
    let token = server.token_create(&[
        "--account",
        "257073",
        "--user",
        "522078",
        "--account-name",
        "Vonage",
    ]);

    // Act
    let resp = server.get(&vis("/self/account"), &token).await;

    // Assert
    resp.expect(200);
    let account = resp.json();
    assert_eq!(account["id"], "257073");
    assert_eq!(account["name"], "Vonage");
    assert_eq!(account["status"], "ACTIVE");
    assert!(account["ucis"].is_array(), "{account}");
    assert_keys_follow(
        &keys(&resp.text, ""),
        &["id", "name", "org", "ucis", "status"],
        "GET /self/account",
    );
    assert_no_nulls(&account, "GET /self/account");
}

// ---- /self/calls ----

#[tokio::test]
async fn calls_lists_only_the_users_live_calls_newest_first() {
    // Arrange
    let f = calls_fixture().await;

    // Act
    let resp = f.server.get(&vis("/self/calls"), &f.me).await;

    // Assert
    resp.expect(200);
    let calls = resp.json();
    assert_eq!(
        ids_of(&calls),
        [
            id_of(&f.held_in),
            id_of(&f.active_out),
            id_of(&f.ringing_in)
        ],
        "non-final calls, DESC by startTime"
    );
    assert_eq!(calls[0], f.held_in, "each call is the latest event object");
    assert_eq!(calls[1], f.active_out);
}

#[tokio::test]
async fn calls_order_direction_and_paging_filters_apply() {
    // Arrange
    let f = calls_fixture().await;
    let (ring, act, held) = (
        id_of(&f.ringing_in),
        id_of(&f.active_out),
        id_of(&f.held_in),
    );
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
        let got = f
            .server
            .get_json(&vis(&format!("/self/calls{query}")), &f.me)
            .await;

        // Assert
        assert_eq!(
            ids_of(&got).iter().collect::<Vec<_>>(),
            want,
            "GET /self/calls{query}"
        );
    }
}

#[tokio::test]
async fn calls_query_values_out_of_range_are_refused_with_422_naming_the_parameter() {
    // Arrange
    let f = calls_fixture().await;
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
        let resp = f
            .server
            .get(&vis(&format!("/self/calls?{query}")), &f.me)
            .await;

        // Assert
        assert_eq!(resp.expect_validation(), [field], "GET /self/calls?{query}");
    }
}

#[tokio::test]
async fn calls_count_defaults_to_active_calls_and_filters_by_states_and_direction() {
    // Arrange
    let f = calls_fixture().await;
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
        let got = f
            .server
            .get_json(&vis(&format!("/self/calls/count{query}")), &f.me)
            .await;

        // Assert
        assert_eq!(count_of(&got), want, "GET /self/calls/count{query}");
    }
}

#[tokio::test]
async fn calls_count_refuses_unknown_states_and_directions_with_422() {
    // Arrange
    let f = calls_fixture().await;

    for (query, field) in [
        ("states=TALKING", "states"),
        ("states=ACTIVE,NOPE", "states"),
        ("direction=UP", "direction"),
    ] {
        // Act
        let resp = f
            .server
            .get(&vis(&format!("/self/calls/count?{query}")), &f.me)
            .await;

        // Assert
        assert_eq!(
            resp.expect_validation(),
            [field],
            "GET /self/calls/count?{query}"
        );
    }
}

#[tokio::test]
async fn one_call_is_an_array_holding_it_in_any_state() {
    // Arrange
    let f = calls_fixture().await;

    for event in [&f.ringing_in, &f.held_in, &f.answered_out, &f.missed_in] {
        // Act
        let resp = f
            .server
            .get(&vis(&format!("/self/calls/{}", id_of(event))), &f.me)
            .await;

        // Assert
        resp.expect(200);
        assert_eq!(resp.json(), json!([event]));
    }
}

#[tokio::test]
async fn unknown_and_foreign_call_ids_are_404_without_a_leak() {
    // Arrange
    let f = calls_fixture().await;
    let colleague = f.server.user_token("a1", "u2");
    let stranger = f.server.user_token("a2", "u1");
    let mine = id_of(&f.held_in);

    for (token, path) in [
        (&colleague, format!("/self/calls/{mine}")),
        (&stranger, format!("/self/calls/{mine}")),
        (&colleague, format!("/self/events/{mine}")),
        (&stranger, format!("/self/events/{mine}")),
        (&f.me, "/self/calls/does-not-exist".to_string()),
        (&f.me, "/self/events/does-not-exist".to_string()),
        (&f.me, "/self/calls/999999999".to_string()),
        (&f.me, "/self/calls/1%27%20OR%20%271%27%3D%271".to_string()),
        (
            &f.me,
            "/self/events/%22%3B%20DROP%20TABLE%20calls%3B--".to_string(),
        ),
    ] {
        // Act
        let resp = f.server.get(&vis(&path), token).await;

        // Assert
        resp.expect_error(404, "NOT_FOUND");
        assert!(
            !resp.text.contains("+14155550100") && !resp.text.contains("held"),
            "leak: {resp:?}"
        );
    }
}

#[tokio::test]
async fn users_never_see_each_others_calls_or_events() {
    // Arrange
    let f = calls_fixture().await;
    let colleague = f.server.user_token("a1", "u2");
    let stranger = f.server.user_token("a2", "u1");

    for token in [&colleague, &stranger] {
        // Act
        let calls = f.server.get_json(&vis("/self/calls"), token).await;
        let events = f.server.get_json(&vis("/self/events"), token).await;
        let n = f.server.get_json(&vis("/self/events/count"), token).await;

        // Assert
        assert_eq!(
            calls.as_array().map(Vec::len),
            Some(1),
            "only their own call: {calls}"
        );
        assert_eq!(
            events.as_array().map(Vec::len),
            Some(1),
            "only their own call: {events}"
        );
        assert_eq!(count_of(&n), 1);
        let mine: Vec<String> = [
            &f.ringing_in,
            &f.active_out,
            &f.held_in,
            &f.answered_out,
            &f.missed_in,
        ]
        .iter()
        .map(|e| id_of(e))
        .collect();
        assert!(
            ids_of(&events).iter().all(|i| !mine.contains(i)),
            "{events}"
        );
    }
}

// ---- /self/events ----

#[tokio::test]
async fn calls_count_accepts_a_date_range() {
    // Arrange
    let f = calls_fixture().await;
    let everything = "?states=RINGING,ACTIVE,HELD";

    // Act
    let all = f
        .server
        .get_json(
            &vis(&format!("/self/calls/count{everything}&fromDate=0")),
            &f.me,
        )
        .await;
    let none = f
        .server
        .get_json(
            &vis(&format!(
                "/self/calls/count{everything}&fromDate={}",
                T0 + 3_600_000
            )),
            &f.me,
        )
        .await;
    let before = f
        .server
        .get_json(
            &vis(&format!("/self/calls/count{everything}&toDate={}", T0 - 1)),
            &f.me,
        )
        .await;
    let bad = f
        .server
        .get(&vis("/self/calls/count?fromDate=soon"), &f.me)
        .await;

    // Assert
    assert_eq!(count_of(&all), 3);
    assert_eq!(count_of(&none), 0);
    assert_eq!(count_of(&before), 0);
    assert_eq!(bad.expect_validation(), ["fromDate"]);
}

#[tokio::test]
async fn lists_default_to_pages_of_20() {
    // Arrange
    let server = Server::start();
    let ingest = server.ingest_token();
    let me = server.user_token(ME.0, ME.1);
    for i in 0..25 {
        script_call(
            &server,
            &ingest,
            ME,
            &format!("c{i:02}"),
            "INBOUND",
            &[("RINGING", i * 1_000)],
        )
        .await;
    }

    // Act
    let events = server.get_json(&vis("/self/events"), &me).await;
    let events_page_2 = server.get_json(&vis("/self/events?offset=1"), &me).await;
    let calls = server.get_json(&vis("/self/calls"), &me).await;
    let calls_page_2 = server.get_json(&vis("/self/calls?offset=1"), &me).await;

    // Assert
    assert_eq!(events.as_array().map(Vec::len), Some(20));
    assert_eq!(events_page_2.as_array().map(Vec::len), Some(5));
    assert_eq!(events[0]["externalId"], "c00", "events ASC by startTime");
    assert_eq!(events_page_2[4]["externalId"], "c24");
    assert_eq!(calls.as_array().map(Vec::len), Some(20));
    assert_eq!(calls_page_2.as_array().map(Vec::len), Some(5));
    assert_eq!(calls[0]["externalId"], "c24", "calls DESC by startTime");
    assert_eq!(calls_page_2[4]["externalId"], "c00");
    assert_eq!(
        count_of(&server.get_json(&vis("/self/events/count"), &me).await),
        25,
        "count ignores paging"
    );
}
