//! The `callhook` binary: everything lives in the library; this only hands over to the CLI.

/// mimalloc rather than the system allocator: allocation and freeing were about a tenth of
/// `serve`'s CPU time under load with glibc's malloc, and `serve` delivers about 15% more events
/// per second with mimalloc (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    callhook::cli::main()
}
