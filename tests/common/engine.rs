//! The real `winzo serve` binary as a child process, for tests that kill or signal it.
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A spawned engine that is killed when dropped, so a failing test leaves no process.
pub struct Engine(Child);

impl std::ops::Deref for Engine {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Engine {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `winzo serve` with the test settings on `db_url` and `port` (plus `env`).
pub fn spawn_engine(db_url: &str, port: u16, env: &[(&str, &str)]) -> Engine {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_winzo"));
    cmd.arg("serve")
        .env("WINZO_ENV", "test")
        .env("DATABASE_URL", db_url)
        .env("WINZO__SERVER__PORT", port.to_string())
        .env("WINZO__DATABASE__MIGRATE_ON_START", "false")
        .stdout(Stdio::null())
        .stderr(if std::env::var_os("WINZO_TEST_ENGINE_LOG").is_some() {
            // Debugging a failing test: the engines' logs on the test's stderr.
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    for (k, v) in env {
        cmd.env(k, v);
    }
    Engine(cmd.spawn().expect("spawning winzo serve"))
}

/// Waits until `GET {base}/readyz` answers 200 (at most 60 s).
pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    let url = format!("{base}/readyz");
    super::wait_until(
        &format!("the engine at {base} to be ready"),
        Duration::from_secs(60),
        || async { matches!(http.get(&url).send().await, Ok(r) if r.status() == 200) },
    )
    .await;
}
