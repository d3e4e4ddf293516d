//! The real `winzo serve` binary as a child process, for tests that kill or signal it.
use std::path::PathBuf;
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

/// A spawned engine that is killed when dropped, so a failing test leaves no process. Its
/// log (warnings and errors at the test settings' level) goes to a file that is printed
/// when the test fails, so a failure in CI says what the engine saw.
pub struct Engine(Child, Option<PathBuf>);

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
        let Some(log) = self.1.take() else { return };
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            // A panic's message and place come before its backtrace, which alone can fill
            // the tail: they are shown first, wherever they are in the log.
            let panics: Vec<String> = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.contains("panicked at"))
                .map(|(i, _)| lines[i..(i + 3).min(lines.len())].join("\n"))
                .collect();
            eprintln!(
                "--- engine pid {} log: {} panic(s) ---\n{}\n--- last {} of {} lines ---\n{}\n--- end ---",
                self.0.id(),
                panics.len(),
                panics.join("\n"),
                tail.len(),
                lines.len(),
                tail.join("\n")
            );
        }
        let _ = std::fs::remove_file(&log);
    }
}

/// Lines of an engine's log shown when a test fails.
const LOG_TAIL_LINES: usize = 60;

/// Starts `winzo serve` with the test settings on `db_url` and `port` (plus `env`).
pub fn spawn_engine(db_url: &str, port: u16, env: &[(&str, &str)]) -> Engine {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_winzo"));
    cmd.arg("serve")
        .env("WINZO_ENV", "test")
        .env("DATABASE_URL", db_url)
        .env("WINZO__SERVER__PORT", port.to_string())
        .env("WINZO__DATABASE__MIGRATE_ON_START", "false")
        .env(
            "WINZO__BRIDGE__CHANNEL_PREFIX",
            super::bridge_prefix(db_url),
        )
        .stdout(Stdio::null());
    let log = if std::env::var_os("WINZO_TEST_ENGINE_LOG").is_some() {
        // Debugging a failing test: the engines' logs on the test's stderr as they come.
        cmd.stderr(Stdio::inherit());
        None
    } else {
        let path = std::env::temp_dir().join(format!(
            "winzo-engine-{}-{port}-{}.log",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let file = std::fs::File::create(&path).expect("creating the engine's log file");
        cmd.stderr(file);
        Some(path)
    };
    for (k, v) in env {
        cmd.env(k, v);
    }
    Engine(cmd.spawn().expect("spawning winzo serve"), log)
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
