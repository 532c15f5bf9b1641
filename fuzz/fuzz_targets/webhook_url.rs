//! The webhook URL validator and the delivery target policy on IP-literal URLs.
//! The harness is `callhook::fuzzing::webhook_url`, shared with `tests/fuzz_regressions.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| callhook::fuzzing::webhook_url(data));
