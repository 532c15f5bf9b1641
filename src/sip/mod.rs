//! The SIP call observer (`serve --sip ADDR`): a SIP proxy that relays requests and responses
//! between callers and callees, stays in every dialog it relays (Record-Route), and turns what it
//! sees into call events for the parties the `--sip-users` file names. It never originates or
//! answers a call; the only responses it makes itself are 483 (Max-Forwards spent), 482 (loop),
//! 404 (a request addressed to the proxy itself), 503 (too many calls followed) and 200 to an
//! OPTIONS ping addressed to it.
//!
//! - [`facts`]: what a message says (method or status, Call-ID, CSeq, From/To, SDP direction);
//! - [`relay`]: the forwarding rules (Via, Route, Record-Route, Max-Forwards), no sockets;
//! - [`observe`]: the dialogs followed and the reports they cause, pure;
//! - [`users`]: the `--sip-users` file;
//! - [`tcp`]: SIP over TCP: framing, a reader and a writer per connection;
//! - [`server`]: the UDP socket and TCP listener, the timers, and the workers that hand reports
//!   to [`CallSink`].
//!
//! Built on rsipstack's SIP codec (`rsipstack::sip`: parser, headers, serializer). rsipstack's
//! transaction and dialog layers are a user agent's (they absorb an ACK with no transaction of
//! their own and answer CANCEL themselves), which a relay must not do; so the proxy is
//! dialog-stateful and transaction-stateless (RFC 3261 §16.11): it follows every dialog's state
//! but keeps no transaction timers, and retransmissions pass end to end.
//!
//! May depend on: `domain`, `metrics`, `telephony::CallSink`, rsipstack's `sip` codec, tokio.
//!
//! [`CallSink`]: crate::telephony::CallSink

pub mod facts;
pub mod observe;
pub mod relay;
pub mod server;
pub mod tcp;
pub mod users;

pub use server::{Bound, Settings};

#[cfg(test)]
mod tests;
