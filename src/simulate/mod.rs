//! `callhook simulate`: realistic call traffic through the ingestion API, reproducible from a
//! seed.
//!
//! - [`plan`] draws every call of a run before anything is sent: who, which direction, which
//!   remote party, when it starts and which states it goes through at which simulated times.
//! - [`mix`] holds the shares (answered, missed, rejected, cancelled, held, ...) and the ring,
//!   talk and hold time distributions the plan draws from.
//! - [`people`] names users, accounts and remote parties.
//! - [`driver`] plays a plan over HTTP, `--speedup` times faster than real time, and records
//!   what the server accepted.
//! - [`summary`] adds that up per user and per state, with ingestion latency percentiles.
//!
//! `plan`, `mix`, `people` and `summary` are pure (no I/O, no clock) and depend only on
//! [`crate::domain`] for call states, directions, the state machine and timestamps. `driver` is
//! a client of the wire API (reqwest, tokio); like `bench` it never touches the store or the API
//! code. The CLI prints.

pub mod driver;
pub mod mix;
pub mod people;
pub mod plan;
pub mod summary;

pub use driver::{Live, Playback};
pub use plan::{Plan, PlanSettings};
pub use summary::Summary;

use reqwest::Url;

/// The callhook to drive: its root URL and an `ingest` token.
#[derive(Debug, Clone)]
pub struct Target {
    pub base: Url,
    pub token: String,
}

/// Why a run could not start or had to stop. Each message is one line naming the cause.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("cannot reach callhook at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error(
        "the ingest token was refused ({answer}); make one with `callhook token create --role ingest`"
    )]
    Unauthorized { answer: String },
    #[error(
        "the token may not report these calls ({answer}); simulate needs an ingest token valid for \
         every simulated account: `callhook token create --role ingest`"
    )]
    Forbidden { answer: String },
    #[error(
        "no callhook ingestion API at {url} ({answer}); --base-url is the server's root, e.g. \
         http://127.0.0.1:8080"
    )]
    NotCallhook { url: String, answer: String },
    #[error("the token contains characters that cannot be sent in an HTTP header")]
    MalformedToken,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}
