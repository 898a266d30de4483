//! `ticketing`: serves until SIGTERM or SIGINT, then drains; `ticketing migrate`
//! only migrates. The life cycle itself is `kit::service::main`.

/// The inbox's allocator, for the same reason (its `main.rs`): both
/// services hand buffers between tokio's worker threads, which mimalloc's
/// per-thread heaps suit (docs/decisions.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kit::service::main::<ticketing::Binary>().await
}
