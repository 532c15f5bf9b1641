//! `callhook token create|list|revoke`: bearer tokens, stored hashed, and the user and account
//! profiles they name. Works while `serve` runs on the same database.

use crate::domain::Timestamp;
use crate::domain::identity::{Role, UserProfile, generate_token, hash_token};
use crate::domain::validation::check_id;
use crate::store::{Database, NewToken, Opened, Store, TokenInfo};
use anyhow::{Context, bail};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct DbArg {
    /// The database: a SQLite file (created if missing) or a postgres:// URL.
    #[arg(long, env = "CALLHOOK_DB", default_value = "callhook.db")]
    pub db: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it, alone, on stdout. It is shown only once.
    Create(Box<CreateArgs>),
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        db: DbArg,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id (the `tok_...` shown by `token list`); effective at once.
    Revoke {
        #[command(flatten)]
        db: DbArg,
        /// The token's id.
        id: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    db: DbArg,
    /// Account id. Required for user tokens; limits an ingest token to that account.
    #[arg(long)]
    account: Option<String>,
    /// User id (required for user tokens).
    #[arg(long)]
    user: Option<String>,
    /// `user` sees the /self routes of its user; `ingest` may only report call events.
    #[arg(long, default_value = "user", value_parser = ["user", "ingest"])]
    role: String,
    /// A label for the token, shown by `token list`.
    #[arg(long)]
    name: Option<String>,
    /// The user's first name (GET /self firstName).
    #[arg(long)]
    first_name: Option<String>,
    /// The user's last name (GET /self lastName).
    #[arg(long)]
    last_name: Option<String>,
    /// The user's e-mail address (GET /self emailAddress).
    #[arg(long)]
    email: Option<String>,
    /// The user's contact number (GET /self contactNumber).
    #[arg(long)]
    contact_number: Option<String>,
    /// The account's name (GET /self/account name, GET /self acountLabel).
    #[arg(long)]
    account_name: Option<String>,
    /// Make the token expire after this long (e.g. 1h, 30d); default: never.
    #[arg(long, value_parser = super::parse_duration)]
    expires_in: Option<Duration>,
}

async fn open(db: &str) -> anyhow::Result<Arc<dyn Store>> {
    Ok(Opened::open(&Database::parse(db)).await?.store())
}

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => create(*args).await,
        TokenCommand::List { db, json } => list(open(&db.db).await?.as_ref(), json).await,
        TokenCommand::Revoke { db, id } => {
            let store = open(&db.db).await?;
            if !store.revoke_token(&id, Timestamp::now()).await? {
                bail!("no live token with id {id} (see `callhook token list`)");
            }
            eprintln!("revoked {id}");
            Ok(())
        }
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let role = Role::parse(&args.role).context("--role must be user or ingest")?;
    for (flag, value) in [("--account", &args.account), ("--user", &args.user)] {
        if let Some(v) = value {
            check_id(v).map_err(|m| anyhow::anyhow!("{flag} {m}"))?;
        }
    }
    if role == Role::User && (args.account.is_none() || args.user.is_none()) {
        bail!("a user token needs --account and --user");
    }
    if args.user.is_some() && args.account.is_none() {
        bail!("--user needs --account");
    }
    let now = Timestamp::now();
    let profile = match (&args.account, &args.user) {
        (Some(account_id), Some(user_id)) => Some(UserProfile {
            account_id: account_id.clone(),
            user_id: user_id.clone(),
            first_name: args.first_name,
            last_name: args.last_name,
            email: args.email,
            contact_number: args.contact_number,
            account_name: args.account_name,
        }),
        _ => None,
    };
    let secret = generate_token();
    let store = open(&args.db.db).await?;
    store
        .create_token(NewToken {
            id: format!("tok_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            hash: hash_token(&secret),
            role,
            account_id: args.account,
            user_id: args.user,
            name: args.name,
            created_at: now,
            expires_at: args.expires_in.map(|d| now.plus(d)),
            profile,
        })
        .await
        .context("storing the token")?;
    println!("{secret}");
    Ok(())
}

fn token_json(t: &TokenInfo) -> serde_json::Value {
    let mut v = serde_json::json!({"id": t.id, "role": t.role.as_str(), "createdAt": t.created_at.webhook_format()});
    let fields = [
        ("accountId", t.account_id.clone()),
        ("userId", t.user_id.clone()),
        ("name", t.name.clone()),
        ("expiresAt", t.expires_at.map(Timestamp::webhook_format)),
        ("revokedAt", t.revoked_at.map(Timestamp::webhook_format)),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            v[key] = value.into();
        }
    }
    v
}

async fn list(store: &dyn Store, json: bool) -> anyhow::Result<()> {
    let tokens = store.list_tokens().await?;
    if json {
        let all: Vec<_> = tokens.iter().map(token_json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    println!(
        "{:<16} {:<7} {:<12} {:<12} {:<20} {:<25} STATUS",
        "ID", "ROLE", "ACCOUNT", "USER", "NAME", "CREATED"
    );
    let now = Timestamp::now();
    for t in &tokens {
        let status = match (t.revoked_at, t.expires_at) {
            (Some(at), _) => format!("revoked {}", at.webhook_format()),
            (None, Some(at)) if at <= now => format!("expired {}", at.webhook_format()),
            (None, Some(at)) => format!("expires {}", at.webhook_format()),
            (None, None) => "active".to_string(),
        };
        println!(
            "{:<16} {:<7} {:<12} {:<12} {:<20} {:<25} {}",
            t.id,
            t.role.as_str(),
            t.account_id.as_deref().unwrap_or("*"),
            t.user_id.as_deref().unwrap_or("-"),
            t.name.as_deref().unwrap_or("-"),
            t.created_at.webhook_format(),
            status
        );
    }
    Ok(())
}
