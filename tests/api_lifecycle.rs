//! The engine process: graceful shutdown on SIGTERM/SIGINT (exit 0), and a clear failure
//! with retries, never a panic, when Postgres is unreachable at start.
mod common;

use common::engine::{free_port, wait_ready};

use std::process::{Command, Stdio};
use std::time::Duration;

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[tokio::test]
async fn sigterm_and_sigint_stop_the_engine_cleanly_with_exit_code_zero() {
    let db = common::TestDb::new().await;
    let http = reqwest::Client::new();
    for sig in ["-TERM", "-INT"] {
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_winzo"))
            .arg("serve")
            .env("WINZO_ENV", "test")
            .env("DATABASE_URL", &db.url)
            .env("WINZO__SERVER__PORT", port.to_string())
            .env("WINZO__DATABASE__MIGRATE_ON_START", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_ready(&http, &format!("http://127.0.0.1:{port}")).await;
        signal(child.id(), sig);
        let mut status = None;
        common::wait_until(
            &format!("the engine to stop after {sig}"),
            Duration::from_secs(20),
            || {
                status = child.try_wait().unwrap();
                std::future::ready(status.is_some())
            },
        )
        .await;
        let status = status.unwrap();
        assert!(status.success(), "{sig}: exit {status:?}");
    }
}

#[tokio::test]
async fn an_unreachable_database_at_start_is_retried_and_reported_without_a_panic() {
    let port = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_winzo"))
        .arg("serve")
        .env("WINZO_ENV", "test")
        .env(
            "DATABASE_URL",
            format!("postgres://winzo@127.0.0.1:{}/nowhere", free_port()),
        )
        .env("WINZO__SERVER__PORT", port.to_string())
        .env("WINZO__DATABASE__STARTUP_RETRIES_MAX", "2")
        .env("WINZO__DATABASE__STARTUP_RETRY_INTERVAL_MS", "100")
        .env("WINZO__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Postgres unreachable; retrying"),
        "{stderr}"
    );
    assert!(stderr.contains("giving up"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
