//! `callhook calls`: the VIS call routes from the command line (list, place, answer, hold,
//! unhold, transfer, voicemail, end) and callhook's own `ring`, which makes a simulated inbound
//! call ring a user. Against callhook they drive the simulated telephony; against the public VIS
//! they control real calls.

use crate::client::{DEFAULT_BASE_URL, VisClient};
use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};

#[derive(Debug, clap::Args)]
pub struct CallsArgs {
    /// The VIS base URL (callhook's, or the public https://api.vonage.com/t/vbc.prod/vis/v1).
    #[arg(long, env = "VIS_BASE_URL", default_value = DEFAULT_BASE_URL, global = true)]
    base_url: String,

    /// A bearer token: a user token for the VIS routes, an ingest token for `ring`.
    #[arg(long, env = "VIS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,

    /// Print the API's JSON instead of readable lines.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: CallsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CallsCommand {
    /// List your active calls.
    List,
    /// Place an outbound call to NUMBER.
    Place { number: String },
    /// Answer a ringing inbound call.
    Answer { id: String },
    /// Put a call on hold.
    Hold { id: String },
    /// Take a call off hold.
    Unhold { id: String },
    /// Transfer a call to NUMBER (it becomes DETACHED for you).
    Transfer { id: String, number: String },
    /// Send a ringing inbound call to voicemail.
    Voicemail { id: String },
    /// Hang up: ANSWERED if it was answered, CANCELLED or REJECTED if it was still ringing.
    End { id: String },
    /// Make a simulated inbound call ring a user (callhook only; needs an ingest token).
    Ring(RingArgs),
}

#[derive(Debug, clap::Args)]
struct RingArgs {
    /// The callhook server (its root, not the VIS base URL).
    #[arg(long, env = "CALLHOOK_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The account of the user to ring.
    #[arg(long)]
    account: String,
    /// The user to ring.
    #[arg(long)]
    user: String,
    /// The calling number.
    #[arg(long)]
    from: String,
    /// The caller's name.
    #[arg(long)]
    caller_id: Option<String>,
}

pub async fn run(args: CallsArgs) -> anyhow::Result<()> {
    let token = args
        .token
        .as_deref()
        .context("a token is needed: --token or VIS_TOKEN (see `callhook token create`)")?;
    let vis = || VisClient::new(&args.base_url, token);
    let calls = |c: &VisClient, id: &str, action: Option<&str>| {
        let mut segments = vec!["self", "calls"];
        segments.push(id);
        segments.extend(action);
        c.url(&segments)
    };
    let answer: Value = match &args.command {
        CallsCommand::List => {
            let c = vis()?;
            c.get::<Value>(c.url(&["self", "calls"])).await?.value
        }
        CallsCommand::Place { number } => {
            let c = vis()?;
            let url = c.url(&["self", "calls"]);
            c.post::<_, Value>(url, &json!({ "phoneNumber": number }))
                .await?
                .value
        }
        CallsCommand::Answer { id } => {
            let c = vis()?;
            c.put::<Value>(calls(&c, id, Some("answer"))).await?.value
        }
        CallsCommand::Hold { id } => {
            let c = vis()?;
            c.put::<Value>(calls(&c, id, Some("hold"))).await?.value
        }
        CallsCommand::Unhold { id } => {
            let c = vis()?;
            let url = calls(&c, id, Some("hold"));
            c.call(Method::DELETE, url, None)
                .await?
                .decode::<Value>()?
                .value
        }
        CallsCommand::Transfer { id, number } => {
            let c = vis()?;
            let url = calls(&c, id, Some("transfer"));
            c.post::<_, Value>(url, &json!({ "phoneNumber": number }))
                .await?
                .value
        }
        CallsCommand::Voicemail { id } => {
            let c = vis()?;
            c.put::<Value>(calls(&c, id, Some("vmtransfer")))
                .await?
                .value
        }
        CallsCommand::End { id } => {
            let c = vis()?;
            let url = calls(&c, id, None);
            c.call(Method::DELETE, url, None)
                .await?
                .decode::<Value>()?
                .value
        }
        CallsCommand::Ring(ring) => {
            let c = VisClient::new(&ring.url, token)?;
            let url = c.url(&["callhook", "v1", "calls", "ring"]);
            let mut body =
                json!({"accountId": ring.account, "userId": ring.user, "from": ring.from});
            if let Some(name) = &ring.caller_id {
                body["callerId"] = json!(name);
            }
            c.post::<_, Value>(url, &body).await?.value
        }
    };
    print_calls(&answer, args.json)
}

/// Prints a call, an array of calls, or `{"event": call}`.
fn print_calls(answer: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(answer)?);
        return Ok(());
    }
    let calls: Vec<&Value> = match answer {
        Value::Array(items) => items.iter().collect(),
        Value::Object(o) if o.contains_key("event") => vec![&answer["event"]],
        other => vec![other],
    };
    if calls.is_empty() {
        println!("no active calls");
    }
    for call in calls {
        println!("{}", call_line(call));
    }
    Ok(())
}

/// One readable line: id, state, direction, remote party, start, duration.
fn call_line(call: &Value) -> String {
    let text = |key: &str| call[key].as_str().unwrap_or("-").to_string();
    let caller = call["callerId"]
        .as_str()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let duration = match call["duration"].as_i64() {
        Some(ms) if ms > 0 => format!(", talked {:.1}s", ms as f64 / 1000.0),
        _ => String::new(),
    };
    format!(
        "{}  {:<12} {:<8} {}{}  started {}{}",
        text("id"),
        text("state"),
        text("direction"),
        text("phoneNumber"),
        caller,
        text("startTime"),
        duration
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_lines_show_state_party_and_talk_time() {
        let call = json!({"id": "c1", "state": "ANSWERED", "direction": "INBOUND", "phoneNumber": "+1555",
            "callerId": "Bob", "startTime": "2026-11-27T10:00:00.000+0000", "duration": 61500});
        let line = call_line(&call);
        assert!(line.starts_with("c1  ANSWERED"), "{line}");
        assert!(
            line.contains("+1555 (Bob)") && line.ends_with("talked 61.5s"),
            "{line}"
        );
    }
}
