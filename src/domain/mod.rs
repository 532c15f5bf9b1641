//! The pure domain: what a call, a call event, a webhook and an identity are, and the rules that
//! govern them (the call state machine, validation of what clients send).
//!
//! May depend on: std, serde, serde_json, chrono (formatting only), url, utoipa (schema derives).
//! Never on tokio, SQL, axum or an HTTP client. Nothing here reads the clock except
//! [`Timestamp::now`], which callers use at the edge and pass in.
pub mod call;
pub mod event;
pub mod identity;
pub mod report;
pub mod target;
pub mod time;
pub mod validation;
pub mod webhook;

pub use call::{CallState, Direction};
pub use time::Timestamp;
pub use validation::FieldError;
