//! `cleanup` and `recreate`: the seed's two chores for failed webhooks (`statistics.failed`),
//! each after showing what it will touch and asking on stderr (`--yes` skips the question).
//!
//! Both act on exactly the webhooks that were failed when listed and shown; one that fails to be
//! deleted or re-created is reported and the others still proceed, and the command then exits 1.

use super::{explain, explain_collection, show};
use crate::client::{VisClient, Webhook};
use anyhow::bail;
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};

/// Deletes every failed webhook.
pub async fn cleanup(client: &VisClient, yes: bool, json: bool) -> anyhow::Result<()> {
    let failed = failed_webhooks(client).await?;
    let n = failed.len();
    if n == 0 {
        return nothing_failed(json, json!({"failed": 0, "deleted": [], "errors": []}));
    }
    preview(&failed, yes, json);
    if !yes && !confirm(format!("Delete {n} failed {}?", webhooks(n))).await {
        bail!("cancelled: nothing was deleted");
    }
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for w in &failed {
        match client.delete_webhook(&w.id).await {
            Ok(()) => {
                if !json {
                    println!("deleted {}  {}", w.id, w.url);
                }
                deleted.push(json!({"id": w.id, "url": w.url}));
            }
            Err(e) => {
                let error = explain(e).to_string();
                eprintln!("could not delete {}: {error}", w.id);
                errors.push(json!({"id": w.id, "url": w.url, "error": error}));
            }
        }
    }
    finish(
        json,
        json!({"failed": n, "deleted": deleted, "errors": errors}),
        format!("deleted {} of {n} failed {}", deleted.len(), webhooks(n)),
        errors.len(),
        "could not be deleted",
    )
}

/// Replaces every failed webhook by a fresh copy: create first, then delete the failed one.
pub async fn recreate(client: &VisClient, yes: bool, json: bool) -> anyhow::Result<()> {
    let failed = failed_webhooks(client).await?;
    let n = failed.len();
    if n == 0 {
        return nothing_failed(json, json!({"failed": 0, "recreated": [], "errors": []}));
    }
    preview(&failed, yes, json);
    let question = format!(
        "Re-create {n} failed {} (create a fresh copy of each, then delete the failed one)?",
        webhooks(n)
    );
    if !yes && !confirm(question).await {
        bail!("cancelled: nothing was created or deleted");
    }
    let mut recreated = Vec::new();
    let mut errors = Vec::new();
    for w in &failed {
        match replace(client, w).await {
            Ok(new_id) => {
                if !json {
                    println!("recreated {} -> {}  {}", w.id, new_id, w.url);
                }
                recreated.push(json!({"oldId": w.id, "newId": new_id, "url": w.url}));
            }
            Err((new_id, error)) => {
                eprintln!("could not recreate {}: {error}", w.id);
                let mut entry = json!({"id": w.id, "url": w.url, "error": error});
                if let Some(new_id) = new_id {
                    entry["newId"] = json!(new_id);
                }
                errors.push(entry);
            }
        }
    }
    finish(
        json,
        json!({"failed": n, "recreated": recreated, "errors": errors}),
        format!(
            "recreated {} of {n} failed {}",
            recreated.len(),
            webhooks(n)
        ),
        errors.len(),
        "could not be re-created",
    )
}

/// Creates the copy of `w`, then deletes `w`. On failure: the copy's id if it was made, and why.
async fn replace(client: &VisClient, w: &Webhook) -> Result<String, (Option<String>, String)> {
    let body = w.recreate_body();
    if body.signing_algo.as_deref() == Some("HMAC_SHA256") && body.signing_key.is_none() {
        return Err((
            None,
            "the API did not return its signingKey, so a copy would not be signed the same; \
             left as it is"
                .into(),
        ));
    }
    let made = client.create_webhook(&body).await.map_err(|e| {
        (
            None,
            format!("creating the copy: {}; the failed one is kept", explain(e)),
        )
    })?;
    let new_id = made.value.id;
    match client.delete_webhook(&w.id).await {
        Ok(()) => Ok(new_id),
        Err(e) => Err((
            Some(new_id.clone()),
            format!(
                "created {new_id}, but deleting the failed one: {}",
                explain(e)
            ),
        )),
    }
}

/// The webhooks whose `statistics.failed` is true, in the API's order.
async fn failed_webhooks(client: &VisClient) -> anyhow::Result<Vec<Webhook>> {
    let all = client.list_webhooks().await.map_err(explain_collection)?;
    Ok(all.value.into_iter().filter(Webhook::is_failed).collect())
}

fn nothing_failed(json: bool, summary: Value) -> anyhow::Result<()> {
    match json {
        true => println!("{summary:#}"),
        false => println!("no failed webhooks: nothing to do"),
    }
    Ok(())
}

/// Shows on stderr what will be touched: always for people, for scripts only when asking.
fn preview(failed: &[Webhook], yes: bool, json: bool) {
    if json && yes {
        return;
    }
    let n = failed.len();
    eprintln!("{n} failed {}:", webhooks(n));
    eprint!("{}", show::table(failed));
}

/// The summary, and an error when some did not work out.
fn finish(
    json: bool,
    summary: Value,
    sentence: String,
    errors: usize,
    what: &str,
) -> anyhow::Result<()> {
    match json {
        true => println!("{summary:#}"),
        false => println!("{sentence}"),
    }
    if errors > 0 {
        bail!("{errors} failed {} {what}", webhooks(errors));
    }
    Ok(())
}

/// Asks `question [y/N]` on stderr and reads one line of stdin: true only for y or yes. No
/// stdin, an empty line or anything else is no.
async fn confirm(question: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{question} [y/N] ");
        let _ = err.flush();
        let stdin = std::io::stdin();
        let mut line = String::new();
        match stdin.read_line(&mut line) {
            Ok(0) | Err(_) => {
                let _ = writeln!(err, "(no answer)");
                false
            }
            Ok(_) => {
                // A terminal echoes the answer; from a pipe, show it so the transcript reads right.
                if !stdin.is_terminal() {
                    let _ = writeln!(err, "{}", line.trim());
                }
                matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
            }
        }
    })
    .await
    .unwrap_or(false)
}

fn webhooks(n: usize) -> &'static str {
    if n == 1 { "webhook" } else { "webhooks" }
}
