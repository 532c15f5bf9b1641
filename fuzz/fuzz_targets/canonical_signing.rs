//! The canonical-JSON signer: a key, a newline, a JSON event; canonical form idempotent, signatures verify.
//! The harness is `callhook::fuzzing::canonical_signing`, shared with `tests/fuzz_regressions.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| callhook::fuzzing::canonical_signing(data));
