//! The engine process: graceful shutdown on SIGTERM/SIGINT (exit 0), and a clear failure
//! with retries, never a panic, when Postgres is unreachable at start.
mod common;

use common::engine::free_port;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

async fn wait_ready(base: &str) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("engine not ready");
}

#[tokio::test]
async fn sigterm_and_sigint_stop_the_engine_cleanly_with_exit_code_zero() {
    let db = common::TestDb::new().await;
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
        wait_ready(&format!("http://127.0.0.1:{port}")).await;
        signal(child.id(), sig);
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "engine did not stop after {sig}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
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
