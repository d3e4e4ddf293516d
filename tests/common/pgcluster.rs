//! A private Postgres cluster for tests that must stop and start the database under the
//! engine (the shared test cluster must never be stopped). Removed on drop.
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn as_postgres(program: &str) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct PrivateCluster {
    root: PathBuf,
    data: PathBuf,
    pub port: u16,
}

impl PrivateCluster {
    /// initdb and start a small cluster on a free port with database `winzo`.
    pub fn start() -> PrivateCluster {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let root = std::env::temp_dir().join(format!("winzo-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&root).expect("temp dir");
        let _ = Command::new("chown")
            .args(["postgres", &root.to_string_lossy()])
            .output();
        let data = root.join("data");
        run(
            as_postgres(&format!("{PG_BIN}/initdb")).args([
                "-D",
                &data.to_string_lossy(),
                "-U",
                "winzo",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ]),
            "initdb",
        );
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        write!(conf, "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nshared_buffers = 32MB\nmax_connections = 40\n").unwrap();
        let cluster = PrivateCluster { root, data, port };
        cluster.pg_start();
        run(
            Command::new(format!("{PG_BIN}/psql")).args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "winzo",
                "-d",
                "postgres",
                "-qc",
                "CREATE DATABASE winzo",
            ]),
            "createdb",
        );
        cluster
    }

    pub fn url(&self) -> String {
        format!("postgres://winzo@127.0.0.1:{}/winzo", self.port)
    }

    pub fn pg_start(&self) {
        run(
            as_postgres(&format!("{PG_BIN}/pg_ctl")).args([
                "-D",
                &self.data.to_string_lossy(),
                "-l",
                &self.root.join("log").to_string_lossy(),
                "-w",
                "-s",
                "start",
            ]),
            "pg_ctl start",
        );
    }

    /// Stops the server at once (like a crash or an unplugged database host).
    pub fn pg_stop(&self) {
        run(
            as_postgres(&format!("{PG_BIN}/pg_ctl")).args([
                "-D",
                &self.data.to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "-s",
                "stop",
            ]),
            "pg_ctl stop",
        );
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let _ = as_postgres(&format!("{PG_BIN}/pg_ctl"))
                .args([
                    "-D",
                    &self.data.to_string_lossy(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
