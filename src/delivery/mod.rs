//! The delivery engine: takes due deliveries from the outbox under leases, POSTs them (signed, in
//! order per call and webhook, isolated per endpoint), and records outcomes and statistics.
//!
//! - [`engine`]: the loop and its testable step;
//! - [`client`]: the hardened outbound HTTP client;
//! - [`request`]: what an attempt sends and how failures read (pure);
//! - [`retry`]: the retry schedule (pure);
//! - [`window`]: per-webhook concurrency windows, so failing endpoints hold one slot each (pure).
//!
//! May depend on: `domain`, `signing`, `metrics`, the `store::Store` trait. Never on `api`.

pub mod client;
pub mod engine;
pub mod request;
pub mod retry;
pub mod window;

pub use client::{ClientSettings, Sender};
pub use engine::{Engine, EngineSettings};
