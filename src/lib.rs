//! callhook: a self-hostable call-events platform that speaks the Vonage Integration Platform (VIS)
//! webhook API.
//!
//! Map of the crate (each module's own `//!` says what it may depend on):
//! - [`domain`]: pure types and rules: the call state machine, call events, webhooks, identities,
//!   timestamps. Depends on nothing internal; no I/O.
//! - [`store`]: the one [`store::Store`] trait with use-case methods, and its SQLite and PostgreSQL
//!   implementations.
//!   Depends on `domain` only.
//! - [`api`]: the HTTP surface (VIS routes, ingestion, health, OpenAPI), thin axum handlers over the
//!   store trait. Depends on `domain` and `store` (the trait, never a backend).
//! - [`housekeeping`]: background jobs over the store trait (purging expired webhooks).
//! - [`bench`]: `callhook bench`: drives a real `serve` over HTTP; depends on nothing internal.
//! - [`telephony`]: how call events enter (one `CallSink` for every source) and the simulated telephony.
//! - [`sip`]: the SIP call observer (`serve --sip`): a relaying SIP proxy whose dialogs become
//!   call reports through `telephony::CallSink`; depends on `domain`, `metrics`, `telephony`.
//! - [`client`]: typed VIS REST API client (base URL + bearer token); depends on nothing internal.
//! - [`receiver`]: `callhook listen`: takes deliveries over HTTP, verifies, prints, saves, forwards;
//!   depends on `signing` and `domain` only, never on the store.
//! - [`simulate`]: `callhook simulate`: a seeded call plan (pure, over `domain`) played through the
//!   ingestion API over HTTP; never touches the store or the API code.
//! - `fuzzing` (hidden): the hostile-input harnesses shared by the fuzz targets and their
//!   regression tests; depends on `domain` and `signing` only.
//! - [`cli`]: clap commands; `cli::serve` is the composition root that wires concrete types.
pub mod api;
pub mod bench;
pub mod cli;
pub mod client;
pub mod delivery;
pub mod domain;
#[doc(hidden)]
pub mod fuzzing;
pub mod housekeeping;
pub mod metrics;
pub mod receiver;
pub mod signing;
pub mod simulate;
pub mod sip;
pub mod store;
pub mod telephony;
