//! The ingestion body parser: raw bytes -> JSON -> `CallReport` -> the call state machine.
//! The harness is `callhook::fuzzing::ingest_body`, shared with `tests/fuzz_regressions.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| callhook::fuzzing::ingest_body(data));
