//! `ticketing`: serves until SIGTERM or SIGINT, then drains; `ticketing migrate`
//! only migrates. The life cycle itself is `kit::service::main`.

/// glibc's allocator spent a sixth of the inbox's CPU under read load
/// (BENCHMARKS, sixth round); mimalloc's per-thread heaps suit tokio's
/// worker threads handing buffers to one another.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kit::service::main::<ticketing::Binary>().await
}
