//! The delivery engine: drives the queues of the webhooks this process drives, POSTs their
//! deliveries (signed, in order per call and webhook, isolated per endpoint), and records outcomes
//! and statistics.
//!
//! - [`engine`]: the loop, a turn at a time;
//! - [`lane`]: one webhook's queue in memory: order per call, its window, its pause (pure);
//! - [`client`]: the hardened outbound HTTP client;
//! - [`request`]: what an attempt sends and how failures read (pure);
//! - [`retry`]: the retry schedule (pure);
//!
//! May depend on: `domain`, `signing`, `metrics`, the `store::Store` trait. Never on `api`.

pub mod client;
pub mod engine;
pub mod lane;
pub mod request;
pub mod retry;

pub use client::{ClientSettings, Sender};
pub use engine::{Engine, EngineSettings};
