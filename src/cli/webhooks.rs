//! `callhook webhooks`: manage the webhook subscriptions of one user on any VIS API (a local
//! callhook or the public service) through [`crate::client`]: create, list, get, delete, renew,
//! and the seed's two chores, `cleanup` (delete the failed ones) and `recreate` (replace each
//! failed one with a fresh copy).
//!
//! Results go to stdout (the API's own JSON with `--json`); questions, previews and errors go to
//! stderr. The token is never printed.

mod failed;
mod show;

use crate::client::{self, ClientError, VisClient, WebhookCreate};
use anyhow::anyhow;

#[derive(Debug, clap::Args)]
pub struct WebhooksArgs {
    /// Base URL of the VIS API; routes are appended to it (`.../self/webhooks/`). The public
    /// service is https://api.vonage.com/t/vbc.prod/vis/v1.
    #[arg(
        long,
        global = true,
        env = "VIS_BASE_URL",
        default_value = client::DEFAULT_BASE_URL,
        value_name = "URL"
    )]
    base_url: String,

    /// Bearer token of the user whose webhooks these are (for a local callhook, one made by
    /// `callhook token create`; for the public service, an OAuth access token). Required; never
    /// printed. Prefer the environment variable: a flag is visible to other local users.
    #[arg(
        long,
        global = true,
        env = "VIS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,

    /// Print JSON for scripts: the API's own answer, or a summary of what cleanup and recreate did.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: WebhooksCommand,
}

#[derive(Debug, clap::Subcommand)]
enum WebhooksCommand {
    /// Create a webhook for CALL events (signed with HMAC-SHA256 when a signing key is given).
    Create(CreateArgs),
    /// List the webhooks: id, url, status, failed, attempts, successes, failures, last error,
    /// expires.
    List,
    /// Show one webhook.
    Get {
        /// The webhook's id.
        id: String,
    },
    /// Delete one webhook.
    Delete {
        /// The webhook's id.
        id: String,
    },
    /// Renew one webhook: moves expireAt forward and clears `failed`.
    Renew {
        /// The webhook's id.
        id: String,
    },
    /// Delete every failed webhook (statistics.failed), after showing them and asking. Exits 1 if
    /// the answer is not y (or there is no one to ask).
    Cleanup(ConfirmArgs),
    /// Replace every failed webhook: create a fresh one with the same url, events, signingAlgo,
    /// signingKey and metadataPolicy, then delete the failed one. Asks first, like cleanup.
    Recreate(ConfirmArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// The URL that receives the events: absolute http or https.
    #[arg(long)]
    url: String,
    /// Sign deliveries with HMAC-SHA256 keyed with KEY (signingAlgo HMAC_SHA256).
    #[arg(long, value_name = "KEY")]
    signing_key: Option<String>,
    /// Where delivery metadata (signature, webhook id, delivery id, attempt) travels; the API's
    /// default is NONE.
    #[arg(long, value_enum, ignore_case = true)]
    metadata_policy: Option<MetadataPolicy>,
}

#[derive(Debug, clap::Args)]
struct ConfirmArgs {
    /// Do not ask: act at once.
    #[arg(short, long)]
    yes: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum MetadataPolicy {
    /// No metadata at all (so no signature reaches the receiver).
    #[value(name = "NONE")]
    None,
    /// X-VON-Signature, X-VON-Webhook-Id, X-VON-Delivery-Id, X-VON-Attempt headers.
    #[value(name = "HEADER")]
    Header,
    /// A `metadata` object next to `event` in the body.
    #[value(name = "BODY")]
    Body,
}

impl MetadataPolicy {
    fn as_str(self) -> &'static str {
        match self {
            MetadataPolicy::None => "NONE",
            MetadataPolicy::Header => "HEADER",
            MetadataPolicy::Body => "BODY",
        }
    }
}

pub async fn run(args: WebhooksArgs) -> anyhow::Result<()> {
    let client = connect(&args.base_url, args.token.as_deref())?;
    let json = args.json;
    match args.command {
        WebhooksCommand::Create(create_args) => create(&client, create_args, json).await,
        WebhooksCommand::List => {
            let hooks = client.list_webhooks().await.map_err(explain_collection)?;
            match (json, hooks.is_empty()) {
                (true, _) => print_body(&hooks.body),
                (false, true) => println!("no webhooks"),
                (false, false) => print!("{}", show::table(&hooks)),
            }
            Ok(())
        }
        WebhooksCommand::Get { id } => {
            let hook = client.get_webhook(&id).await.map_err(explain)?;
            match json {
                true => print_body(&hook.body),
                false => print!("{}", show::details(&hook)),
            }
            Ok(())
        }
        WebhooksCommand::Delete { id } => {
            client.delete_webhook(&id).await.map_err(explain)?;
            match json {
                true => println!("{}", serde_json::json!({"id": id, "deleted": true})),
                false => println!("deleted webhook {id}"),
            }
            Ok(())
        }
        WebhooksCommand::Renew { id } => {
            let hook = client.renew_webhook(&id).await.map_err(explain)?;
            match json {
                true => print_body(&hook.body),
                false => {
                    println!("renewed webhook {}", hook.id);
                    print!("{}", show::details(&hook));
                }
            }
            Ok(())
        }
        WebhooksCommand::Cleanup(c) => failed::cleanup(&client, c.yes, json).await,
        WebhooksCommand::Recreate(c) => failed::recreate(&client, c.yes, json).await,
    }
}

async fn create(client: &VisClient, args: CreateArgs, json: bool) -> anyhow::Result<()> {
    let mut body = WebhookCreate::new(args.url);
    if let Some(key) = args.signing_key {
        body = body.signing_key(key);
    }
    if let Some(policy) = args.metadata_policy {
        body = body.metadata_policy(policy.as_str());
    }
    let hook = client
        .create_webhook(&body)
        .await
        .map_err(explain_collection)?;
    match json {
        true => print_body(&hook.body),
        false => {
            println!("created webhook {}", hook.id);
            print!("{}", show::details(&hook));
        }
    }
    Ok(())
}

/// A client for `base_url`, or one line saying why there cannot be one.
fn connect(base_url: &str, token: Option<&str>) -> anyhow::Result<VisClient> {
    let token = token.map(str::trim).filter(|t| !t.is_empty()).ok_or_else(|| {
        anyhow!(
            "no token: pass --token TOKEN or set VIS_TOKEN (for a local callhook, make one with \
             `callhook token create --account ACCOUNT --user USER`)"
        )
    })?;
    VisClient::new(base_url, token).map_err(explain)
}

/// A client error as the one line the user sees, with a hint where the status suggests one.
fn explain(e: ClientError) -> anyhow::Error {
    let hint = match e.status() {
        Some(401) => " (check --token or VIS_TOKEN)",
        Some(403) => " (this token may not use these routes: a user token is needed)",
        _ => "",
    };
    anyhow!("{e}{hint}")
}

/// Like [`explain`], for the collection route `/self/webhooks/`, which exists on every VIS API:
/// a 404 there means the base URL is wrong.
fn explain_collection(e: ClientError) -> anyhow::Error {
    match e.status() {
        Some(404) => anyhow!(
            "{e} (is the base URL right? it usually ends in /t/vbc.prod/vis/v1, e.g. {})",
            client::DEFAULT_BASE_URL
        ),
        _ => explain(e),
    }
}

/// An API answer exactly as received, on its own line.
fn print_body(body: &str) {
    println!("{}", body.trim_end());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_blank_token_is_refused_before_any_request() {
        for token in [None, Some(""), Some("  ")] {
            let e = connect(client::DEFAULT_BASE_URL, token).unwrap_err();
            assert!(e.to_string().contains("VIS_TOKEN"), "{e}");
        }
    }

    #[test]
    fn unauthorized_answers_point_at_the_token() {
        let e = explain(ClientError::Api(client::VisError {
            status: 401,
            code: Some("UNAUTHORIZED".into()),
            message: "invalid, expired or revoked token".into(),
            errors: Vec::new(),
        }));
        assert_eq!(
            e.to_string(),
            "401 UNAUTHORIZED: invalid, expired or revoked token (check --token or VIS_TOKEN)"
        );
    }
}
