//! The simulated telephony inside `serve` (issue 4, item 3): the VIS call-control routes place,
//! answer, hold, resume, send to voicemail, transfer and end simulated calls; callhook's own
//! `POST /callhook/v1/calls/ring` makes an inbound call ring a user. Every change must reach the
//! user's webhook exactly like an ingested one, so each test watches a real receiver.
//!
//! Each test runs its own `serve` with short simulation timings. The only sleeps are none: where
//! the point is that something does NOT happen, a later event that must come after it is awaited
//! instead (a "witness" call whose timer is set later than the one under test).

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

/// The number configured never to answer.
const NEVER: &str = "+15550000000";
/// An ordinary remote number: the far end answers after `--sim-answer-after`.
const REMOTE: &str = "+15551230000";
/// Another ordinary remote number.
const REMOTE2: &str = "+15551230001";
/// callhook's own ring route.
const RING: &str = "/callhook/v1/calls/ring";

const ME: (&str, &str) = ("a1", "u1");

// ---- local helpers ----

/// A server with quick delivery settings and these simulation timings.
fn sim_server(answer_after: &str, ring_timeout: &str) -> Server {
    delivery_server(&[
        ("--sim-answer-after", answer_after),
        ("--sim-ring-timeout", ring_timeout),
        ("--sim-never-answer", NEVER),
    ])
}

/// Creates a webhook (policy NONE, unsigned) of `token`'s user pointing at `receiver` + `path`.
async fn subscribe(server: &Server, token: &str, receiver: &Receiver, path: &str) {
    create_hook(server, token, &hook(&receiver.url(path), "NONE", None)).await;
}

fn calls() -> String {
    vis("/self/calls")
}

/// `vis("/self/calls/{id}{suffix}")`.
fn call_path(id: &str, suffix: &str) -> String {
    vis(&format!("/self/calls/{id}{suffix}"))
}

async fn place(server: &Server, token: &str, number: &str) -> Resp {
    server
        .post(&calls(), token, &json!({ "phoneNumber": number }))
        .await
}

async fn answer(server: &Server, token: &str, id: &str) -> Resp {
    server.put(&call_path(id, "/answer"), token).await
}

async fn hold(server: &Server, token: &str, id: &str) -> Resp {
    server.put(&call_path(id, "/hold"), token).await
}

async fn unhold(server: &Server, token: &str, id: &str) -> Resp {
    server.delete(&call_path(id, "/hold"), token).await
}

async fn vmtransfer(server: &Server, token: &str, id: &str) -> Resp {
    server.put(&call_path(id, "/vmtransfer"), token).await
}

async fn transfer(server: &Server, token: &str, id: &str, number: &str) -> Resp {
    server
        .post(
            &call_path(id, "/transfer"),
            token,
            &json!({ "phoneNumber": number }),
        )
        .await
}

async fn end(server: &Server, token: &str, id: &str) -> Resp {
    server.delete(&call_path(id, ""), token).await
}

/// `POST /callhook/v1/calls/ring` with `token` (if any).
async fn ring_with(server: &Server, token: Option<&str>, body: &Value) -> Resp {
    let mut req = server.req("POST", RING).json(body);
    if let Some(token) = token {
        req = req.bearer(token);
    }
    req.send().await
}

fn ring_body((account, user): (&str, &str), from: &str, caller_id: Option<&str>) -> Value {
    let mut body = json!({ "accountId": account, "userId": user, "from": from });
    if let Some(c) = caller_id {
        body["callerId"] = json!(c);
    }
    body
}

/// Rings `who` from `from`; asserts 201 `{"event": {...}}` and returns the event.
async fn ring(
    server: &Server,
    ingest: &str,
    who: (&str, &str),
    from: &str,
    caller_id: Option<&str>,
) -> Value {
    let resp = ring_with(server, Some(ingest), &ring_body(who, from, caller_id)).await;
    resp.expect(201);
    assert!(resp.is_json(), "ring answer must be JSON: {resp:?}");
    assert_eq!(
        keys(&resp.text, ""),
        ["event"],
        "ring answer is {{\"event\": ...}}: {resp:?}"
    );
    let event = resp.json()["event"].clone();
    assert!(event.is_object(), "ring answer's event: {resp:?}");
    event
}

/// Asserts `status` with a JSON array holding exactly one call; returns it.
fn the_one_in_array(resp: &Resp, status: u16) -> Value {
    resp.expect(status);
    assert!(resp.is_json(), "answer must be JSON: {resp:?}");
    let v = resp.json();
    let items = v
        .as_array()
        .unwrap_or_else(|| panic!("answer must be an array of one call: {resp:?}"));
    assert_eq!(
        items.len(),
        1,
        "answer must hold exactly one call: {resp:?}"
    );
    assert!(
        items[0].is_object(),
        "array item must be a call object: {resp:?}"
    );
    assert_no_nulls(&v, &format!("{resp:?}"));
    items[0].clone()
}

/// Asserts 200 with a JSON object that is a call (not an array); returns it.
fn the_call_object(resp: &Resp) -> Value {
    resp.expect(200);
    assert!(resp.is_json(), "answer must be JSON: {resp:?}");
    let v = resp.json();
    assert!(
        v.is_object() && v["id"].is_string() && v["state"].is_string(),
        "answer must be a call object: {resp:?}"
    );
    assert_no_nulls(&v, &format!("{resp:?}"));
    v
}

fn id_of(call: &Value) -> String {
    call["id"]
        .as_str()
        .unwrap_or_else(|| panic!("call without a string id: {call}"))
        .to_string()
}

/// The events of call `id` delivered on `path`, in arrival order.
fn events_of(reqs: &[Request], path: &str, id: &str) -> Vec<Value> {
    on_path(reqs, path)
        .iter()
        .map(Request::event)
        .filter(|e| e["id"] == json!(id))
        .collect()
}

fn states(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["state"].as_str().unwrap_or("-").to_string())
        .collect()
}

/// Waits until call `id` has had an event in `state` delivered on `path`; returns the call's
/// events on `path` so far.
async fn wait_state(receiver: &Receiver, path: &str, id: &str, state: &str) -> Vec<Value> {
    receiver
        .wait_until(&format!("call {id} {state} on {path}"), ARRIVAL, |reqs| {
            let events = events_of(reqs, path, id);
            events
                .iter()
                .any(|e| e["state"] == json!(state))
                .then_some(events)
        })
        .await
}

/// Waits until `n` events of call `id` have been delivered on `path`; returns them.
async fn wait_events(receiver: &Receiver, path: &str, id: &str, n: usize) -> Vec<Value> {
    receiver
        .wait_until(
            &format!("{n} events of call {id} on {path}"),
            ARRIVAL,
            |reqs| {
                let events = events_of(reqs, path, id);
                (events.len() >= n).then_some(events)
            },
        )
        .await
}

/// The request that delivered call `id` in `state` on `path`.
fn delivery_of(receiver: &Receiver, path: &str, id: &str, state: &str) -> Request {
    on_path(&receiver.requests(), path)
        .into_iter()
        .find(|r| r.call_state() == (id.to_string(), state.to_string()))
        .unwrap_or_else(|| panic!("no delivery of {id} {state} on {path}"))
}

/// Waits for the first request on `path` that is not about call `id`, i.e. a new call; returns
/// its event.
async fn wait_other_call(receiver: &Receiver, path: &str, not: &str) -> Value {
    receiver
        .wait_until(
            &format!("a call other than {not} on {path}"),
            ARRIVAL,
            |reqs| {
                on_path(reqs, path)
                    .iter()
                    .map(Request::event)
                    .find(|e| e["id"] != json!(not))
            },
        )
        .await
}

/// GET /self/calls/{id}: the call's current state (200, `[event]`).
async fn current(server: &Server, token: &str, id: &str) -> Value {
    let resp = server.get(&call_path(id, ""), token).await;
    the_one_in_array(&resp, 200)
}

fn ms(t: &Value, key: &str) -> i64 {
    let s = t[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} must be a string: {t}"));
    parse_event_time(s).timestamp_millis()
}

/// Asserts the call ended ANSWERED after talking: answerTime and endTime set, duration > 0 and
/// equal to endTime - answerTime.
fn assert_answered_with_talk(e: &Value) {
    assert_eq!(e["state"], json!("ANSWERED"), "{e}");
    let duration = e["duration"]
        .as_i64()
        .unwrap_or_else(|| panic!("duration must be an integer: {e}"));
    assert!(
        duration > 0,
        "an answered call that talked has duration > 0: {e}"
    );
    assert_eq!(
        duration,
        ms(e, "endTime") - ms(e, "answerTime"),
        "duration = endTime - answerTime: {e}"
    );
}

/// Asserts the call ended without being answered: endTime set, no answerTime, duration 0.
fn assert_ended_unanswered(e: &Value, state: &str) {
    assert_eq!(e["state"], json!(state), "{e}");
    assert_eq!(
        e["duration"],
        json!(0),
        "unanswered call has duration 0: {e}"
    );
    assert!(
        e.get("answerTime").is_none(),
        "unanswered call has no answerTime: {e}"
    );
    ms(e, "endTime");
}

/// Asserts `resp` is 409 CONFLICT.
fn refused(resp: &Resp) {
    resp.expect_error(409, "CONFLICT");
}

/// Places a call to `number` (201, an array of one call); returns the new call's id.
async fn place_ok(server: &Server, token: &str, number: &str) -> String {
    id_of(&the_one_in_array(&place(server, token, number).await, 201))
}

/// A token of user `user` in account a1 whose contact number is `contact`.
fn user_with_contact(server: &Server, user: &str, contact: &str) -> String {
    server.token_create(&[
        "--account",
        "a1",
        "--user",
        user,
        "--contact-number",
        contact,
    ])
}

/// Tries every call-control action on call `id` with `token`, in a fixed order (answer, hold,
/// unhold, vmtransfer, transfer to REMOTE, end), checking each answer with `check` as it comes.
async fn each_action(server: &Server, token: &str, id: &str, check: fn(&Resp)) {
    check(&answer(server, token, id).await);
    check(&hold(server, token, id).await);
    check(&unhold(server, token, id).await);
    check(&vmtransfer(server, token, id).await);
    check(&transfer(server, token, id, REMOTE).await);
    check(&end(server, token, id).await);
}

/// Asserts `resp` is 404 NOT_FOUND.
fn not_found(resp: &Resp) {
    resp.expect_error(404, "NOT_FOUND");
}

// ---- outbound calls ----

#[tokio::test]
async fn a_placed_call_rings_is_answered_by_the_far_end_held_resumed_and_ends_answered() {
    let receiver = Receiver::start();
    let server = sim_server("200ms", "1s");
    let me = server.user_token(ME.0, ME.1);
    subscribe(&server, &me, &receiver, "/me").await;

    // Place: 201 and an array holding the new call, ringing.
    let placed_at = Instant::now();
    let resp = place(&server, &me, REMOTE).await;
    let placed = the_one_in_array(&resp, 201);
    let id = id_of(&placed);
    assert_eq!(placed["direction"], json!("OUTBOUND"), "{placed}");
    assert_eq!(placed["phoneNumber"], json!(REMOTE), "{placed}");
    assert_eq!(placed["accountId"], json!(ME.0), "{placed}");
    assert_eq!(placed["userId"], json!(ME.1), "{placed}");
    assert_eq!(placed["type"], json!("CALL"), "{placed}");
    assert!(
        placed["externalId"]
            .as_str()
            .is_some_and(|x| x.starts_with("sim-")),
        "a simulated call's externalId starts with sim-: {placed}"
    );
    assert!(
        matches!(placed["state"].as_str(), Some("INITIALIZING" | "RINGING")),
        "a placed call is INITIALIZING or RINGING: {placed}"
    );

    // The far end answers by itself.
    let events = wait_state(&receiver, "/me", &id, "ACTIVE").await;
    assert_eq!(states(&events), ["INITIALIZING", "RINGING", "ACTIVE"]);
    let active_delivery = delivery_of(&receiver, "/me", &id, "ACTIVE");
    assert!(
        active_delivery.at - placed_at >= Duration::from_millis(200),
        "the far end answers after --sim-answer-after (200ms), ACTIVE arrived after {:?}",
        active_delivery.at - placed_at
    );
    let active = &events[2];
    assert!(
        ms(active, "answerTime") - ms(active, "startTime") >= 190,
        "answerTime is about 200ms after startTime: {active}"
    );

    // Hold: 200 and the call object, HELD, exactly as delivered.
    let held = the_call_object(&hold(&server, &me, &id).await);
    assert_eq!(held["id"], json!(id));
    assert_eq!(held["state"], json!("HELD"));
    let events = wait_state(&receiver, "/me", &id, "HELD").await;
    assert_eq!(
        events[3], held,
        "the delivered HELD event is the one the route answered"
    );

    // Unhold: 200 and the call object, ACTIVE again.
    let resumed = the_call_object(&unhold(&server, &me, &id).await);
    assert_eq!(resumed["id"], json!(id));
    assert_eq!(resumed["state"], json!("ACTIVE"));
    assert_eq!(
        resumed["answerTime"], active["answerTime"],
        "answerTime stays through hold and resume"
    );
    let events = wait_events(&receiver, "/me", &id, 5).await;
    assert_eq!(events[4], resumed);

    // End: 200 and an array holding the call, ANSWERED with a duration.
    let ended = the_one_in_array(&end(&server, &me, &id).await, 200);
    assert_eq!(ended["id"], json!(id));
    assert_answered_with_talk(&ended);
    let events = wait_state(&receiver, "/me", &id, "ANSWERED").await;
    assert_eq!(events[5], ended);

    // Exactly that sequence, of one call, and nothing else at the receiver.
    let all = receiver.requests_on("/me");
    assert_eq!(
        all.iter().map(Request::call_state).collect::<Vec<_>>(),
        [
            "INITIALIZING",
            "RINGING",
            "ACTIVE",
            "HELD",
            "ACTIVE",
            "ANSWERED"
        ]
        .iter()
        .map(|s| (id.clone(), s.to_string()))
        .collect::<Vec<_>>(),
        "received:\n{}",
        summary(&all)
    );
    assert_answered_with_talk(&all[5].event());
    for r in &all {
        let e = r.event();
        assert_eq!(e["direction"], json!("OUTBOUND"), "{e}");
        assert_eq!(e["phoneNumber"], json!(REMOTE), "{e}");
    }

    // The ended call is no longer active.
    let list = server.get_json(&calls(), &me).await;
    assert_eq!(list, json!([]), "no active call is left");
}

#[tokio::test]
async fn a_number_that_never_answers_keeps_ringing_until_the_caller_hangs_up_cancelled() {
    let receiver = Receiver::start();
    // A long ring timeout: only the caller ends this call.
    let server = sim_server("200ms", "60s");
    let me = server.user_token(ME.0, ME.1);
    subscribe(&server, &me, &receiver, "/me").await;

    let never = the_one_in_array(&place(&server, &me, NEVER).await, 201);
    let id = id_of(&never);
    wait_state(&receiver, "/me", &id, "RINGING").await;

    // Witness: a call placed later to an ordinary number is answered; the never-answering call's
    // answer timer, if it had one, would have fired before.
    let witness = the_one_in_array(&place(&server, &me, REMOTE).await, 201);
    wait_state(&receiver, "/me", &id_of(&witness), "ACTIVE").await;

    let now = current(&server, &me, &id).await;
    assert_eq!(
        now["state"],
        json!("RINGING"),
        "the call to {NEVER} still rings: {now}"
    );

    let ended = the_one_in_array(&end(&server, &me, &id).await, 200);
    assert_eq!(ended["id"], json!(id));
    assert_ended_unanswered(&ended, "CANCELLED");

    let events = wait_state(&receiver, "/me", &id, "CANCELLED").await;
    assert_eq!(states(&events), ["INITIALIZING", "RINGING", "CANCELLED"]);
    assert_eq!(events[2], ended);
}

#[tokio::test]
async fn a_number_that_never_answers_is_cancelled_by_the_ring_timeout() {
    let receiver = Receiver::start();
    let server = sim_server("200ms", "1s");
    let me = server.user_token(ME.0, ME.1);
    subscribe(&server, &me, &receiver, "/me").await;

    let placed_at = Instant::now();
    let never = the_one_in_array(&place(&server, &me, NEVER).await, 201);
    let id = id_of(&never);

    let events = wait_state(&receiver, "/me", &id, "CANCELLED").await;
    assert_eq!(states(&events), ["INITIALIZING", "RINGING", "CANCELLED"]);
    assert_ended_unanswered(&events[2], "CANCELLED");
    let took = delivery_of(&receiver, "/me", &id, "CANCELLED").at - placed_at;
    assert!(
        took >= Duration::from_millis(950),
        "CANCELLED comes after the ring timeout (1s), it came after {took:?}"
    );

    let now = current(&server, &me, &id).await;
    assert_eq!(now["state"], json!("CANCELLED"), "{now}");
    refused(&end(&server, &me, &id).await);
}

// ---- inbound calls ----

#[tokio::test]
async fn a_ringing_inbound_call_is_answered_and_ends_answered_and_answering_stops_the_ring_timeout()
{
    let receiver = Receiver::start();
    let server = sim_server("200ms", "2s");
    let me = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    subscribe(&server, &me, &receiver, "/me").await;

    let rung_at = Instant::now();
    let rung = ring(&server, &ingest, ME, REMOTE, Some("Bob")).await;
    let id = id_of(&rung);
    assert_eq!(rung["state"], json!("RINGING"), "{rung}");
    assert_eq!(rung["direction"], json!("INBOUND"), "{rung}");
    assert_eq!(rung["phoneNumber"], json!(REMOTE), "{rung}");
    assert_eq!(rung["callerId"], json!("Bob"), "{rung}");
    assert_eq!(rung["accountId"], json!(ME.0), "{rung}");
    assert_eq!(rung["userId"], json!(ME.1), "{rung}");

    // Answer at once (well inside the 2s ring timeout).
    let active = the_call_object(&answer(&server, &me, &id).await);
    assert_eq!(active["id"], json!(id));
    assert_eq!(active["state"], json!("ACTIVE"));
    assert!(active["answerTime"].is_string(), "{active}");
    assert!(
        rung_at.elapsed() < Duration::from_secs(2),
        "test too slow: answered after the ring timeout"
    );

    let events = wait_state(&receiver, "/me", &id, "ACTIVE").await;
    assert_eq!(states(&events), ["RINGING", "ACTIVE"]);
    assert_eq!(
        events[0], rung,
        "the delivered RINGING is the event the ring route answered"
    );
    assert_eq!(
        events[0]["callerId"],
        json!("Bob"),
        "callerId kept: {}",
        events[0]
    );
    assert_eq!(events[1], active);

    // Witness: a call rung later is MISSED by its ring timeout; the answered call's timer would
    // have fired before, and must not have.
    let witness = ring(&server, &ingest, ME, REMOTE2, None).await;
    wait_state(&receiver, "/me", &id_of(&witness), "MISSED").await;
    let now = current(&server, &me, &id).await;
    assert_eq!(
        now["state"],
        json!("ACTIVE"),
        "an answered call is not missed: {now}"
    );
    assert_eq!(
        states(&events_of(&receiver.requests(), "/me", &id)),
        ["RINGING", "ACTIVE"]
    );

    let ended = the_one_in_array(&end(&server, &me, &id).await, 200);
    assert_answered_with_talk(&ended);
    let events = wait_state(&receiver, "/me", &id, "ANSWERED").await;
    assert_eq!(states(&events), ["RINGING", "ACTIVE", "ANSWERED"]);
    assert_eq!(events[2], ended);
    for e in &events {
        assert_eq!(e["direction"], json!("INBOUND"), "{e}");
        assert_eq!(e["callerId"], json!("Bob"), "{e}");
    }
}

#[tokio::test]
async fn a_ringing_inbound_call_hung_up_or_sent_to_voicemail_is_rejected() {
    let receiver = Receiver::start();
    let server = sim_server("200ms", "60s");
    let me = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    subscribe(&server, &me, &receiver, "/me").await;

    // Ring, then end.
    let first = id_of(&ring(&server, &ingest, ME, REMOTE, Some("Alice")).await);
    let ended = the_one_in_array(&end(&server, &me, &first).await, 200);
    assert_eq!(ended["id"], json!(first));
    assert_ended_unanswered(&ended, "REJECTED");
    let events = wait_state(&receiver, "/me", &first, "REJECTED").await;
    assert_eq!(states(&events), ["RINGING", "REJECTED"]);
    assert_eq!(events[1], ended);

    // Ring, then voicemail: 200 and the call object.
    let second = id_of(&ring(&server, &ingest, ME, REMOTE2, None).await);
    let vm = the_call_object(&vmtransfer(&server, &me, &second).await);
    assert_eq!(vm["id"], json!(second));
    assert_ended_unanswered(&vm, "REJECTED");
    let events = wait_state(&receiver, "/me", &second, "REJECTED").await;
    assert_eq!(states(&events), ["RINGING", "REJECTED"]);
    assert_eq!(events[1], vm);

    assert_eq!(
        receiver.requests_on("/me").len(),
        4,
        "{}",
        summary(&receiver.requests())
    );
}

#[tokio::test]
async fn an_unanswered_inbound_call_is_missed_after_the_ring_timeout() {
    let receiver = Receiver::start();
    let server = sim_server("200ms", "1s");
    let me = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    subscribe(&server, &me, &receiver, "/me").await;

    let rung_at = Instant::now();
    let id = id_of(&ring(&server, &ingest, ME, REMOTE, Some("Carol")).await);

    let events = wait_state(&receiver, "/me", &id, "MISSED").await;
    assert_eq!(states(&events), ["RINGING", "MISSED"]);
    assert_ended_unanswered(&events[1], "MISSED");
    assert_eq!(events[1]["callerId"], json!("Carol"), "{}", events[1]);
    let took = delivery_of(&receiver, "/me", &id, "MISSED").at - rung_at;
    assert!(
        took >= Duration::from_millis(950),
        "MISSED comes after the ring timeout (1s), it came after {took:?}"
    );

    let now = current(&server, &me, &id).await;
    assert_eq!(now["state"], json!("MISSED"), "{now}");
    refused(&answer(&server, &me, &id).await);
}

// ---- transfer ----

/// A server where users uA (contact +100) and uB (contact +200) of account a1 each have a
/// webhook at `receiver` (`/a`, `/b`), and uA has placed a call the far end answered (its
/// ACTIVE event delivered). Returns (receiver, server, A's token, B's token, A's call id).
async fn a_talking_and_b_subscribed() -> (Receiver, Server, String, String, String) {
    let receiver = Receiver::start();
    let server = sim_server("200ms", "60s");
    let a = user_with_contact(&server, "uA", "+100");
    let b = user_with_contact(&server, "uB", "+200");
    subscribe(&server, &a, &receiver, "/a").await;
    subscribe(&server, &b, &receiver, "/b").await;
    let id_a = place_ok(&server, &a, REMOTE).await;
    wait_state(&receiver, "/a", &id_a, "ACTIVE").await;
    (receiver, server, a, b, id_a)
}

/// Transfers call `id` to `number`; asserts 200 and the call object, DETACHED; returns it.
async fn transfer_detached(server: &Server, token: &str, id: &str, number: &str) -> Value {
    let detached = the_call_object(&transfer(server, token, id, number).await);
    assert_eq!(detached["id"], json!(id));
    assert_eq!(detached["state"], json!("DETACHED"));
    detached
}

#[tokio::test]
async fn a_transfer_to_a_colleague_detaches_the_call_rings_them_and_ends_with_their_call() {
    // A's call is answered by the far end.
    let (receiver, server, a, b, id_a) = a_talking_and_b_subscribed().await;

    // Transfer to B's contact number: 200 and A's call object, DETACHED.
    let detached = transfer_detached(&server, &a, &id_a, "+200").await;
    let events = wait_state(&receiver, "/a", &id_a, "DETACHED").await;
    assert_eq!(
        states(&events),
        ["INITIALIZING", "RINGING", "ACTIVE", "DETACHED"]
    );
    assert_eq!(events[3], detached);

    // B gets a new inbound call from A's remote number.
    let new = wait_other_call(&receiver, "/b", &id_a).await;
    let id_b = id_of(&new);
    assert_ne!(id_b, id_a, "the transferred call is a new call for B");
    assert_eq!(new["state"], json!("RINGING"), "{new}");
    assert_eq!(new["direction"], json!("INBOUND"), "{new}");
    assert_eq!(
        new["phoneNumber"],
        json!(REMOTE),
        "B is rung from A's remote number: {new}"
    );
    assert_eq!(new["userId"], json!("uB"), "{new}");
    assert_eq!(new["accountId"], json!("a1"), "{new}");

    // B answers.
    let b_active = the_call_object(&answer(&server, &b, &id_b).await);
    assert_eq!(b_active["state"], json!("ACTIVE"));
    wait_state(&receiver, "/b", &id_b, "ACTIVE").await;
    // While B talks, A's call stays DETACHED.
    let a_now = current(&server, &a, &id_a).await;
    assert_eq!(a_now["state"], json!("DETACHED"), "{a_now}");

    // B ends: B's call ANSWERED, then A's detached call ANSWERED.
    let b_end_sent = Instant::now();
    let b_ended = the_one_in_array(&end(&server, &b, &id_b).await, 200);
    assert_answered_with_talk(&b_ended);
    let b_events = wait_state(&receiver, "/b", &id_b, "ANSWERED").await;
    assert_eq!(states(&b_events), ["RINGING", "ACTIVE", "ANSWERED"]);
    assert_eq!(b_events[2], b_ended);

    let a_events = wait_state(&receiver, "/a", &id_a, "ANSWERED").await;
    assert_eq!(
        states(&a_events),
        ["INITIALIZING", "RINGING", "ACTIVE", "DETACHED", "ANSWERED"]
    );
    assert_answered_with_talk(&a_events[4]);
    let a_answered_at = delivery_of(&receiver, "/a", &id_a, "ANSWERED").at;
    assert!(
        a_answered_at > b_end_sent,
        "A's detached call ends when B's call ends, not before"
    );
    assert!(
        ms(&a_events[4], "endTime") >= ms(&b_ended, "endTime"),
        "A's call ends with (not before) B's: A {} B {}",
        a_events[4],
        b_ended
    );

    // Each receiver got only its own user's call.
    let reqs = receiver.requests();
    assert!(
        on_path(&reqs, "/a")
            .iter()
            .all(|r| r.call_state().0 == id_a),
        "A got only its own call:\n{}",
        summary(&reqs)
    );
    assert!(
        on_path(&reqs, "/b")
            .iter()
            .all(|r| r.call_state().0 == id_b),
        "B got only the transferred call:\n{}",
        summary(&reqs)
    );
    assert_eq!(on_path(&reqs, "/a").len(), 5, "{}", summary(&reqs));
    assert_eq!(on_path(&reqs, "/b").len(), 3, "{}", summary(&reqs));
}

#[tokio::test]
async fn a_transfer_to_a_number_no_user_has_detaches_the_call_and_ends_it() {
    let (receiver, server, a, _b, id_a) = a_talking_and_b_subscribed().await;

    let detached = transfer_detached(&server, &a, &id_a, "+999").await;

    let events = wait_state(&receiver, "/a", &id_a, "ANSWERED").await;
    assert_eq!(
        states(&events),
        ["INITIALIZING", "RINGING", "ACTIVE", "DETACHED", "ANSWERED"]
    );
    assert_eq!(events[3], detached);
    assert_answered_with_talk(&events[4]);
    let now = current(&server, &a, &id_a).await;
    assert_eq!(now["state"], json!("ANSWERED"), "{now}");

    // Nobody was rung: witness through B's own webhook, a call B is rung with directly arrives
    // as B's first and only event.
    let ingest = server.ingest_token();
    let direct = id_of(&ring(&server, &ingest, ("a1", "uB"), REMOTE2, None).await);
    wait_state(&receiver, "/b", &direct, "RINGING").await;
    let on_b = receiver.requests_on("/b");
    assert_eq!(
        on_b.iter().map(Request::call_state).collect::<Vec<_>>(),
        [(direct.clone(), "RINGING".to_string())],
        "B was not rung by the transfer to +999:\n{}",
        summary(&on_b)
    );
}

// ---- refusals ----

#[tokio::test]
async fn actions_the_call_state_does_not_allow_are_refused_409_and_change_nothing() {
    let receiver = Receiver::start();
    let server = sim_server("200ms", "60s");
    let me = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    subscribe(&server, &me, &receiver, "/me").await;

    // An outbound call that keeps ringing.
    let out_ringing = place_ok(&server, &me, NEVER).await;
    refused(&answer(&server, &me, &out_ringing).await); // outbound: nothing to answer
    refused(&hold(&server, &me, &out_ringing).await); // ringing: cannot hold
    refused(&unhold(&server, &me, &out_ringing).await);
    refused(&vmtransfer(&server, &me, &out_ringing).await);
    refused(&transfer(&server, &me, &out_ringing, REMOTE2).await);

    // An outbound call the far end answered.
    let out_active = place_ok(&server, &me, REMOTE).await;
    wait_state(&receiver, "/me", &out_active, "ACTIVE").await;
    refused(&answer(&server, &me, &out_active).await);
    refused(&unhold(&server, &me, &out_active).await); // not on hold
    refused(&vmtransfer(&server, &me, &out_active).await);

    // An inbound call still ringing.
    let in_ringing = id_of(&ring(&server, &ingest, ME, REMOTE2, None).await);
    refused(&hold(&server, &me, &in_ringing).await);
    refused(&unhold(&server, &me, &in_ringing).await);
    refused(&transfer(&server, &me, &in_ringing, REMOTE).await);

    // Nothing changed.
    assert_eq!(
        current(&server, &me, &out_ringing).await["state"],
        json!("RINGING")
    );
    assert_eq!(
        current(&server, &me, &out_active).await["state"],
        json!("ACTIVE")
    );
    assert_eq!(
        current(&server, &me, &in_ringing).await["state"],
        json!("RINGING")
    );

    // The refused actions emitted nothing: ending each call now gives exactly one more event.
    refused(&answer(&server, &me, &out_active).await);
    for id in [&out_ringing, &out_active, &in_ringing] {
        the_one_in_array(&end(&server, &me, id).await, 200);
    }
    let ended_in = wait_state(&receiver, "/me", &in_ringing, "REJECTED").await;
    let ended_ring = wait_state(&receiver, "/me", &out_ringing, "CANCELLED").await;
    let ended_active = wait_state(&receiver, "/me", &out_active, "ANSWERED").await;
    assert_eq!(
        states(&ended_ring),
        ["INITIALIZING", "RINGING", "CANCELLED"]
    );
    assert_eq!(
        states(&ended_active),
        ["INITIALIZING", "RINGING", "ACTIVE", "ANSWERED"]
    );
    assert_eq!(states(&ended_in), ["RINGING", "REJECTED"]);
}

#[tokio::test]
async fn every_action_on_an_ended_call_is_refused_409() {
    let receiver = Receiver::start();
    let server = sim_server("200ms", "60s");
    let me = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    subscribe(&server, &me, &receiver, "/me").await;

    let out = place_ok(&server, &me, REMOTE).await;
    wait_state(&receiver, "/me", &out, "ACTIVE").await;
    let out_ended = the_one_in_array(&end(&server, &me, &out).await, 200);
    assert_eq!(out_ended["state"], json!("ANSWERED"));

    let inb = id_of(&ring(&server, &ingest, ME, REMOTE2, None).await);
    let in_ended = the_one_in_array(&end(&server, &me, &inb).await, 200);
    assert_eq!(in_ended["state"], json!("REJECTED"));

    for (id, was) in [(&out, &out_ended), (&inb, &in_ended)] {
        each_action(&server, &me, id, refused).await;
        assert_eq!(
            &current(&server, &me, id).await,
            was,
            "an ended call stays as it ended"
        );
    }

    // Witness: a later call's first event arrives, and the ended calls got nothing more.
    let witness = id_of(&ring(&server, &ingest, ME, REMOTE, None).await);
    wait_state(&receiver, "/me", &witness, "RINGING").await;
    wait_state(&receiver, "/me", &out, "ANSWERED").await;
    wait_state(&receiver, "/me", &inb, "REJECTED").await;
    let reqs = receiver.requests();
    assert_eq!(
        states(&events_of(&reqs, "/me", &out)),
        ["INITIALIZING", "RINGING", "ACTIVE", "ANSWERED"]
    );
    assert_eq!(
        states(&events_of(&reqs, "/me", &inb)),
        ["RINGING", "REJECTED"]
    );
}

#[tokio::test]
async fn a_call_reported_through_ingestion_cannot_be_controlled_409_and_is_unchanged() {
    let receiver = Receiver::start();
    let server = sim_server("200ms", "60s");
    let me = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    subscribe(&server, &me, &receiver, "/me").await;
    let pbx = |ext: &str, state: &str| report(ME.0, ME.1, ext, "INBOUND", state);

    let ringing = server.ingest_ok(&ingest, &pbx("pbx-ring", "RINGING")).await;
    let ringing_id = id_of(&ringing);
    server.ingest_ok(&ingest, &pbx("pbx-talk", "RINGING")).await;
    let talking = server.ingest_ok(&ingest, &pbx("pbx-talk", "ACTIVE")).await;
    let talking_id = id_of(&talking);

    // Every action a simulated call in the same state would allow is refused.
    refused(&answer(&server, &me, &ringing_id).await);
    refused(&vmtransfer(&server, &me, &ringing_id).await);
    refused(&end(&server, &me, &ringing_id).await);
    refused(&hold(&server, &me, &talking_id).await);
    refused(&transfer(&server, &me, &talking_id, REMOTE).await);
    refused(&end(&server, &me, &talking_id).await);

    assert_eq!(
        current(&server, &me, &ringing_id).await,
        ringing,
        "unchanged"
    );
    assert_eq!(
        current(&server, &me, &talking_id).await,
        talking,
        "unchanged"
    );

    // Witness: the telephony source reports the next change; it is the next event delivered.
    let done = server
        .ingest_ok(&ingest, &pbx("pbx-talk", "ANSWERED"))
        .await;
    let events = wait_state(&receiver, "/me", &talking_id, "ANSWERED").await;
    assert_eq!(states(&events), ["RINGING", "ACTIVE", "ANSWERED"]);
    assert_eq!(events[1], talking);
    assert_eq!(events[2], done);
    wait_state(&receiver, "/me", &ringing_id, "RINGING").await;
    assert_eq!(
        states(&events_of(&receiver.requests(), "/me", &ringing_id)),
        ["RINGING"]
    );
}

#[tokio::test]
async fn another_users_call_or_an_unknown_call_is_404_and_left_alone() {
    let receiver = Receiver::start();
    let server = sim_server("200ms", "60s");
    let me = server.user_token(ME.0, ME.1);
    let colleague = server.user_token("a1", "u2");
    let stranger = server.user_token("a2", "u1"); // same user id, other account
    let ingest = server.ingest_token();
    subscribe(&server, &me, &receiver, "/me").await;

    let out = place_ok(&server, &me, REMOTE).await;
    wait_state(&receiver, "/me", &out, "ACTIVE").await;
    let inb = id_of(&ring(&server, &ingest, ME, REMOTE2, None).await);

    for other in [&colleague, &stranger] {
        for id in [&out, &inb] {
            each_action(&server, other, id, not_found).await;
        }
    }
    for id in ["no-such-call", "00000000-0000-0000-0000-000000000000"] {
        each_action(&server, &me, id, not_found).await;
    }

    // Left alone: both calls are as they were, and the owner can still act on them.
    assert_eq!(current(&server, &me, &out).await["state"], json!("ACTIVE"));
    assert_eq!(current(&server, &me, &inb).await["state"], json!("RINGING"));
    the_call_object(&answer(&server, &me, &inb).await);
    the_one_in_array(&end(&server, &me, &out).await, 200);
    let out_events = wait_state(&receiver, "/me", &out, "ANSWERED").await;
    let in_events = wait_state(&receiver, "/me", &inb, "ACTIVE").await;
    assert_eq!(
        states(&out_events),
        ["INITIALIZING", "RINGING", "ACTIVE", "ANSWERED"]
    );
    assert_eq!(states(&in_events), ["RINGING", "ACTIVE"]);
}

#[tokio::test]
async fn a_missing_or_invalid_phone_number_is_422_naming_phone_number() {
    let receiver = Receiver::start();
    let server = sim_server("200ms", "60s");
    let me = server.user_token(ME.0, ME.1);
    subscribe(&server, &me, &receiver, "/me").await;

    let bad_bodies = [
        json!({}),
        json!({ "phoneNumber": "" }),
        json!({ "phoneNumber": "   " }),
        json!({ "phoneNumber": null }),
        json!({ "phoneNumber": 15551234567u64 }),
        json!({ "phoneNumber": ["+15551234567"] }),
        json!({ "number": "+15551234567" }),
    ];
    for body in &bad_bodies {
        let resp = server.post(&calls(), &me, body).await;
        assert_eq!(
            resp.expect_validation(),
            ["phoneNumber"],
            "place with {body}: {resp:?}"
        );
    }
    assert_eq!(
        server.get_json(&calls(), &me).await,
        json!([]),
        "a refused place creates no call"
    );

    // Transfer of an active call with a bad number: refused, the call stays ACTIVE.
    let id = place_ok(&server, &me, REMOTE).await;
    wait_state(&receiver, "/me", &id, "ACTIVE").await;
    for body in &bad_bodies {
        let resp = server.post(&call_path(&id, "/transfer"), &me, body).await;
        assert_eq!(
            resp.expect_validation(),
            ["phoneNumber"],
            "transfer with {body}: {resp:?}"
        );
    }
    assert_eq!(current(&server, &me, &id).await["state"], json!("ACTIVE"));

    // Nothing was emitted by the refusals: the next change is the next event.
    the_one_in_array(&end(&server, &me, &id).await, 200);
    wait_state(&receiver, "/me", &id, "ANSWERED").await;
    let all = receiver.requests_on("/me");
    assert_eq!(
        all.iter().map(Request::state).collect::<Vec<_>>(),
        ["INITIALIZING", "RINGING", "ACTIVE", "ANSWERED"],
        "{}",
        summary(&all)
    );
}

#[tokio::test]
async fn ringing_needs_an_ingest_token_and_call_control_a_user_token() {
    let receiver = Receiver::start();
    let server = sim_server("200ms", "60s");
    let me = server.user_token(ME.0, ME.1);
    let ingest = server.ingest_token();
    let ingest_a2 = server.token_create(&["--role", "ingest", "--account", "a2"]);
    subscribe(&server, &me, &receiver, "/me").await;
    let body = ring_body(ME, REMOTE, Some("Dave"));

    // Ring: a user token is 403, no token or a bad one 401, an ingest token of another account 403.
    ring_with(&server, Some(&me), &body)
        .await
        .expect_error(403, "FORBIDDEN");
    ring_with(&server, None, &body)
        .await
        .expect_error(401, "UNAUTHORIZED");
    ring_with(&server, Some("chk_not_a_real_token"), &body)
        .await
        .expect_error(401, "UNAUTHORIZED");
    ring_with(&server, Some(&ingest_a2), &body)
        .await
        .expect_error(403, "FORBIDDEN");

    // Place: no token 401, an ingest token 403.
    server
        .req("POST", &calls())
        .json(&json!({ "phoneNumber": REMOTE }))
        .send()
        .await
        .expect_error(401, "UNAUTHORIZED");
    place(&server, &ingest, REMOTE)
        .await
        .expect_error(403, "FORBIDDEN");
    assert_eq!(
        server.get_json(&calls(), &me).await,
        json!([]),
        "refused requests create no call"
    );

    // The call-control routes on a real call: no token 401, an ingest token 403.
    let id = id_of(&ring(&server, &ingest, ME, REMOTE, Some("Dave")).await);
    for (method, suffix) in [
        ("PUT", "/answer"),
        ("PUT", "/hold"),
        ("DELETE", "/hold"),
        ("PUT", "/vmtransfer"),
        ("DELETE", ""),
    ] {
        server
            .req(method, &call_path(&id, suffix))
            .send()
            .await
            .expect_error(401, "UNAUTHORIZED");
        server
            .req(method, &call_path(&id, suffix))
            .bearer(&ingest)
            .send()
            .await
            .expect_error(403, "FORBIDDEN");
    }
    server
        .req("POST", &call_path(&id, "/transfer"))
        .json(&json!({ "phoneNumber": REMOTE2 }))
        .send()
        .await
        .expect_error(401, "UNAUTHORIZED");
    assert_eq!(current(&server, &me, &id).await["state"], json!("RINGING"));

    // Only the accepted ring reached the receiver: ending the call gives its second event.
    the_one_in_array(&end(&server, &me, &id).await, 200);
    wait_state(&receiver, "/me", &id, "REJECTED").await;
    let all = receiver.requests_on("/me");
    assert_eq!(
        all.iter().map(Request::call_state).collect::<Vec<_>>(),
        [
            (id.clone(), "RINGING".to_string()),
            (id.clone(), "REJECTED".to_string())
        ],
        "{}",
        summary(&all)
    );
}
