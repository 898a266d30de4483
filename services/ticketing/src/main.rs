//! `ticketing`: serves until SIGTERM or SIGINT, then drains; `ticketing migrate`
//! only migrates. The life cycle itself is `kit::service::main`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    kit::service::main::<ticketing::Binary>().await
}
