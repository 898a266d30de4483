//! `inbox`: serves until SIGTERM or SIGINT, then drains; `inbox migrate`
//! only migrates. The life cycle itself is `kit::service::main`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kit::service::main::<inbox::Binary>().await
}
