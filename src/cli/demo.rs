//! `callhook demo`: the one command a newcomer runs first. Starts the platform on a temporary
//! SQLite database, a receiver, registers a webhook for a demo user exactly as the seed does,
//! drives a handful of simulated calls through the VIS call-control routes, shows the events
//! arriving live, then prints the commands to do it all by hand.

use crate::bench::StoreChoice;
use crate::bench::platform::Platform;
use crate::client::VisClient;
use crate::receiver::{self, Format, Goal, Outcome, Output, Settings};
use anyhow::{Context, bail};
use axum::http::StatusCode;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the platform and the receiver running after the demo calls, until Ctrl-C, to try
    /// the printed commands against them.
    #[arg(long)]
    keep_running: bool,
}

/// The seed's create body, with the receiver's URL.
fn seed_body(url: &str) -> String {
    format!(
        "{{\n \"url\": \"{url}\",\n \"events\": [\n \"CALL\"\n ],\n \"signingAlgo\": \"HMAC_SHA256\",\n \
         \"signingKey\": \"string\",\n \"metadataPolicy\": \"NONE\"\n}}"
    )
}

/// The events the demo calls produce: 6 + 3 + 2 + 3.
const EXPECTED_EVENTS: u64 = 14;
/// A number the simulated far end never answers (serve's default `--sim-never-answer`).
const NEVER_ANSWERS: &str = "+15550000000";

fn narrate(line: &str) {
    eprintln!("\n>> {line}");
}

/// A short pause so the events can be watched as they arrive.
async fn beat() {
    tokio::time::sleep(Duration::from_millis(600)).await;
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the callhook executable")?;
    narrate("starting `callhook serve` on a temporary database");
    let settings: Vec<String> = ["--sim-answer-after", "1s", "--sim-ring-timeout", "3s"]
        .map(String::from)
        .into();
    let platform = Platform::start(&exe, &settings, &StoreChoice::Sqlite).await?;
    let result = demo(&platform, &args).await;
    platform.stop().await?;
    result
}

async fn demo(platform: &Platform, args: &DemoArgs) -> anyhow::Result<()> {
    let base = platform.base_url().to_string();
    eprintln!("   callhook listening on {base}");
    let user = platform
        .create_token(&[
            "--account",
            "376",
            "--user",
            "24785",
            "--first-name",
            "Ann",
            "--name",
            "demo",
        ])
        .await?;
    let ingest = platform
        .create_token(&["--role", "ingest", "--name", "demo"])
        .await?;

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the receiver")?;
    let hook_url = format!("http://{}/webhook", listener.local_addr()?);
    narrate(&format!(
        "starting a receiver on {hook_url} (what `callhook listen` runs)"
    ));
    let stop = CancellationToken::new();
    let goal = if args.keep_running {
        Goal::default()
    } else {
        Goal {
            count: Some(EXPECTED_EVENTS),
            expect: None,
        }
    };
    let receiving = tokio::spawn(receiver::run(
        listener,
        Settings {
            path: "/webhook".into(),
            signing_key: None,
            format: Format::Text,
            colour: std::io::stdout().is_terminal(),
            status: StatusCode::OK,
            forward: None,
            save: None,
            goal,
            timeout: (!args.keep_running).then_some(Duration::from_secs(60)),
        },
        Output {
            out: Box::new(std::io::stdout()),
            err: Box::new(std::io::stderr()),
        },
        stop.clone(),
    ));

    let vis_base = format!("{base}/t/vbc.prod/vis/v1");
    let vis = VisClient::new(&vis_base, &user)?;
    narrate("creating a webhook for user 24785 with the seed's exact body (POST /self/webhooks/)");
    let created = vis
        .call(
            Method::POST,
            vis.url(&["self", "webhooks", ""]),
            Some(seed_body(&hook_url).into_bytes()),
        )
        .await?
        .decode::<Value>()?;
    eprintln!("   webhook {}", created["id"].as_str().unwrap_or("?"));

    drive_calls(&vis, &base, &ingest).await?;

    if args.keep_running {
        print_by_hand(Some((&base, &user)));
        eprintln!("\nthe platform and the receiver keep running; Ctrl-C to stop");
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    }
    let outcome = receiving.await.context("the receiver stopped")??;
    if let Outcome::Failed(why) = outcome {
        bail!("the demo's events did not all arrive: {why}");
    }
    if !args.keep_running {
        print_by_hand(None);
    }
    Ok(())
}

/// Four calls: answered with a hold, answered inbound, missed, cancelled.
async fn drive_calls(vis: &VisClient, base: &str, ingest: &str) -> anyhow::Result<()> {
    narrate("Ann calls +15551230000; the far end answers after 1 s; she holds, resumes, hangs up");
    let placed = vis
        .post::<_, Value>(
            vis.url(&["self", "calls"]),
            &json!({"phoneNumber": "+15551230000"}),
        )
        .await?;
    let first = placed[0]["id"]
        .as_str()
        .context("place answered no call id")?
        .to_string();
    wait_for_state(vis, &first, "ACTIVE").await?;
    beat().await;
    vis.put::<Value>(vis.url(&["self", "calls", &first, "hold"]))
        .await?;
    beat().await;
    vis.call(
        Method::DELETE,
        vis.url(&["self", "calls", &first, "hold"]),
        None,
    )
    .await?;
    beat().await;
    vis.delete(vis.url(&["self", "calls", &first])).await?;
    beat().await;

    let ring = VisClient::new(base, ingest)?;
    let ring_url = ring.url(&["callhook", "v1", "calls", "ring"]);
    narrate("Bob (+15559870000) calls Ann; she answers, then hangs up");
    let rung = ring
        .post::<_, Value>(
            ring_url.clone(),
            &json!({"accountId": "376", "userId": "24785", "from": "+15559870000", "callerId": "Bob"}),
        )
        .await?;
    let second = rung["event"]["id"]
        .as_str()
        .context("ring answered no call id")?
        .to_string();
    beat().await;
    vis.put::<Value>(vis.url(&["self", "calls", &second, "answer"]))
        .await?;
    beat().await;
    vis.delete(vis.url(&["self", "calls", &second])).await?;
    beat().await;

    narrate("Carol (+15557770000) calls; nobody answers: MISSED after 3 s");
    let rung = ring
        .post::<_, Value>(
            ring_url,
            &json!({"accountId": "376", "userId": "24785", "from": "+15557770000", "callerId": "Carol"}),
        )
        .await?;
    let third = rung["event"]["id"]
        .as_str()
        .context("ring answered no call id")?
        .to_string();
    wait_for_state(vis, &third, "MISSED").await?;

    narrate(&format!(
        "Ann calls {NEVER_ANSWERS}, which never answers, and gives up: CANCELLED"
    ));
    let placed = vis
        .post::<_, Value>(
            vis.url(&["self", "calls"]),
            &json!({"phoneNumber": NEVER_ANSWERS}),
        )
        .await?;
    let fourth = placed[0]["id"]
        .as_str()
        .context("place answered no call id")?
        .to_string();
    beat().await;
    vis.delete(vis.url(&["self", "calls", &fourth])).await?;
    Ok(())
}

/// Polls the call until it reaches `state` (the simulated far end acts on a timer).
async fn wait_for_state(vis: &VisClient, id: &str, state: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let call = vis.get::<Value>(vis.url(&["self", "calls", id])).await?;
        if call[0]["state"] == state {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("call {id} did not reach {state} in time");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The commands to do it all by hand; with a running demo, also how to point them at it.
fn print_by_hand(running: Option<(&str, &str)>) {
    println!(
        "\nTo do it by hand:\n\
         \n  callhook serve                                        # the platform, on callhook.db\
         \n  callhook listen                                       # a receiver on http://127.0.0.1:3000/webhook\
         \n  export VIS_TOKEN=$(callhook token create --account 376 --user 24785)\
         \n  callhook webhooks create --url http://127.0.0.1:3000/webhook\
         \n  callhook calls place +15551230000                     # and watch the receiver\
         \n  callhook webhooks list\
         \n  callhook simulate --token $(callhook token create --role ingest) --calls 20"
    );
    if let Some((base, token)) = running {
        println!(
            "\nOr try the calls and webhooks commands against this demo right now:\n\
             \n  export VIS_BASE_URL={base}/t/vbc.prod/vis/v1 VIS_TOKEN={token}\
             \n  callhook calls place +15551230000\
             \n  callhook webhooks list"
        );
    }
}
