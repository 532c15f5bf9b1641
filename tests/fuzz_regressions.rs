//! The fuzz targets' regression corpus on stable: every file in `fuzz/regressions/<target>/` (the
//! inputs the fuzzers once crashed on, named `crash-*`, and a small hand-picked seed corpus, named
//! `seed-*`) goes through the very harness its fuzz target runs (`callhook::fuzzing`), which panics
//! when an invariant breaks.

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_fuzz_regression_and_seed_input_keeps_its_invariants() {
    for (target, harness) in callhook::fuzzing::TARGETS {
        // Arrange
        let files = inputs(target);
        assert!(!files.is_empty(), "no inputs for {target}");
        let crashes = files
            .iter()
            .filter(|f| {
                f.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("crash-"))
            })
            .count();

        for file in &files {
            let data = std::fs::read(file).expect("read input");

            // Act
            let outcome = std::panic::catch_unwind(|| harness(&data));

            // Assert
            assert!(
                outcome.is_ok(),
                "{target}: {} broke an invariant",
                file.display()
            );
        }
        println!(
            "{target}: {} inputs ({crashes} former crashes) keep their invariants",
            files.len()
        );
    }
}
