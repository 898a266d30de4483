//! The real binary: a bad setting stops start-up with a message naming it;
//! `migrate` migrates and exits.

use std::process::Command;

#[test]
fn a_bad_setting_stops_start_up_naming_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .env("TICKETING_LISTEN", "not-an-address")
        .output()
        .expect("run ticketing");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TICKETING_LISTEN"), "{stderr}");
}

#[test]
fn migrate_creates_the_schema_and_exits() {
    let dir = std::env::temp_dir().join(format!("ticketing-migrate-{}", std::process::id()));
    let url = format!("sqlite://{}/t.db?mode=rwc", dir.display());
    let output = Command::new(env!("CARGO_BIN_EXE_ticketing"))
        .arg("migrate")
        .env("TICKETING_DATABASE_URL", &url)
        .output()
        .expect("run ticketing migrate");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
}
