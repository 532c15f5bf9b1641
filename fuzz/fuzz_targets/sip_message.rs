//! The SIP observer: datagrams (separated by NUL bytes) parsed, relayed and observed in order.
//! The harness is `callhook::fuzzing::sip_message`, shared with `tests/fuzz_regressions.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| callhook::fuzzing::sip_message(data));
