//! Point-in-time recovery, end to end, on a private Postgres cluster (the shared test
//! cluster's WAL archive is left alone): scripts/backup.sh takes a base backup, bets are
//! placed, the time is noted, more bets are placed (and a second backup taken), and
//! scripts/restore.sh restores a copy to the noted time from the backup that started before
//! it; the copy holds exactly the earlier bets, with a clean ledger.
//!
//! Bets are placed through the engine (POST /api/v1/bets) running against the private
//! cluster, so "acknowledged" means what it means for bettors; the restored copy is
//! checked with the engine's own ledger check (`winzo check-ledger`).
mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const PG_OS_USER: &str = "postgres";
const STAKE: Decimal = dec!(10.00);
const FUNDS: Decimal = dec!(1000.00);

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the cluster's OS user (Postgres refuses to run as root).
fn as_pg(program: &str) -> Command {
    if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", PG_OS_USER, "--", program]);
        c
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap().port()
}

/// Stops every cluster it knows of and deletes the folder, also when the test fails.
struct Clusters {
    root: PathBuf,
    data_dirs: Vec<PathBuf>,
}

impl Drop for Clusters {
    fn drop(&mut self) {
        for dir in &self.data_dirs {
            if dir.join("postmaster.pid").exists() {
                let _ = as_pg(&format!("{PG_BIN}/pg_ctl"))
                    .args([
                        "-D",
                        &dir.to_string_lossy(),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ])
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Clusters {
    /// A private cluster with WAL archiving into `<root>/wal-archive`, started on `port`.
    fn start_primary(port: u16) -> Clusters {
        let root = std::env::temp_dir().join(format!("winzo-pitr-{}", Uuid::new_v4().simple()));
        std::fs::create_dir(&root).expect("temp dir");
        if running_as_root() {
            run(
                Command::new("chown").args([PG_OS_USER, &root.to_string_lossy()]),
                "chown",
            );
        }
        let mut clusters = Clusters {
            root: root.clone(),
            data_dirs: Vec::new(),
        };
        for sub in ["wal-archive", "backups"] {
            run(as_pg("mkdir").arg(root.join(sub)), "mkdir");
        }
        let data = root.join("primary");
        run(
            as_pg(&format!("{PG_BIN}/initdb")).args([
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
        // Beside the data folder, as scripts/services.sh lays clusters out: the scripts find it
        // from the server's data_directory.
        let archive = root.join("wal-archive");
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("postgresql.conf");
        write!(
            conf,
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
             wal_level = replica\narchive_mode = on\n\
             archive_command = 'cp %p {}/%f'\nshared_buffers = 32MB\nmax_connections = 30\n\
             shared_preload_libraries = 'pg_stat_statements'\n",
            archive.display()
        )
        .expect("write conf");
        clusters.data_dirs.push(data.clone());
        run(
            as_pg(&format!("{PG_BIN}/pg_ctl")).args([
                "-D",
                &data.to_string_lossy(),
                "-l",
                &root.join("primary.log").to_string_lossy(),
                "-w",
                "-s",
                "start",
            ]),
            "pg_ctl start",
        );
        clusters
    }

    fn script_env(&self, cmd: &mut Command, port: u16) {
        cmd.env("WINZO_PG_PORT", port.to_string())
            .env("WINZO_PG_DB", "winzo")
            .env("WINZO_BACKUP_DIR", self.root.join("backups"))
            .env("WINZO_BACKUP_KEEP", "2");
    }
}

fn script(name: &str) -> Command {
    Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts")
            .join(name),
    )
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A funded bettor and an open selection. Returns (user, selection).
async fn seed(db: &Client) -> (Uuid, Uuid) {
    let row = db
        .query_one(
            "WITH s AS (INSERT INTO sports (name, display_name, slug)
                        VALUES ('football', 'Football', 'football') RETURNING id),
                  h AS (INSERT INTO teams (sport_id, name, display_name, slug)
                        SELECT id, 'Home', 'Home', 'home' FROM s RETURNING id, sport_id),
                  a AS (INSERT INTO teams (sport_id, name, display_name, slug)
                        SELECT id, 'Away', 'Away', 'away' FROM s RETURNING id),
                  e AS (INSERT INTO events (sport_id, home_team_id, away_team_id, start_time)
                        SELECT h.sport_id, h.id, a.id, now() + interval '1 hour' FROM h, a
                        RETURNING id),
                  m AS (INSERT INTO markets (event_id, type, name)
                        SELECT id, 'moneyline', 'Match winner' FROM e RETURNING id)
             INSERT INTO selections (market_id, name, odds)
             SELECT id, 'Home', 2.1000 FROM m RETURNING id",
            &[],
        )
        .await
        .expect("catalogue");
    let selection: Uuid = row.get(0);
    let user: Uuid = db
        .query_one(
            "INSERT INTO users (username, email, password_hash)
             VALUES ('bettor', 'bettor@winzo.test', 'x') RETURNING id",
            &[],
        )
        .await
        .expect("user")
        .get(0);
    db.execute(
        "INSERT INTO user_balances (user_id, balance) VALUES ($1, $2)",
        &[&user, &FUNDS],
    )
    .await
    .expect("balance");
    db.execute(
        "INSERT INTO transactions (user_id, type, amount, status, processed_at)
         VALUES ($1, 'deposit', $2, 'completed', now())",
        &[&user, &FUNDS],
    )
    .await
    .expect("deposit");
    (user, selection)
}

/// One accepted single placed through the engine; answers the acknowledged bet's id.
async fn place_bet(app: &common::TestApp, token: &str, selection: Uuid) -> Uuid {
    let body = serde_json::json!({"type": "single", "stake": STAKE.to_string(),
        "idempotency_key": Uuid::new_v4().to_string(),
        "legs": [{"selection_id": selection, "odds": "2.1000"}]});
    let r = app
        .http
        .post(app.url("/api/v1/bets"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("bet request");
    assert_eq!(r.status(), 201, "bet acknowledged");
    let v: serde_json::Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().parse().unwrap()
}

/// Forces a WAL switch and waits until the closed segment is in the archive.
async fn switch_wal_and_wait(db: &Client, archive: &Path) {
    let segment: String = db
        .query_one("SELECT pg_walfile_name(pg_switch_wal())", &[])
        .await
        .unwrap()
        .get(0);
    common::wait_until(
        &format!("WAL segment {segment} to reach the archive"),
        Duration::from_secs(20),
        || std::future::ready(archive.join(&segment).exists()),
    )
    .await;
}

/// `winzo check-ledger` on a database: balances equal their transactions, none negative,
/// every bet with exactly one stake debit.
async fn assert_ledger_clean(url: &str) {
    let mut settings = common::test_settings();
    settings.database.url = url.to_string();
    let violations = winzo::ledger_check::check_database(&settings.database)
        .await
        .expect("ledger check runs");
    assert!(
        violations.is_empty(),
        "ledger check failed on the restored copy: {violations:?}"
    );
}

async fn bet_ids(db: &Client) -> BTreeSet<Uuid> {
    db.query("SELECT id FROM bets", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_to_a_noted_time_keeps_exactly_the_bets_placed_before_it() {
    let port = free_port();
    let mut clusters = Clusters::start_primary(port);
    let archive = clusters.root.join("wal-archive");
    let admin = connect(&format!("postgres://winzo@127.0.0.1:{port}/postgres")).await;
    admin.batch_execute("CREATE DATABASE winzo").await.unwrap();
    let url = format!("postgres://winzo@127.0.0.1:{port}/winzo");
    winzo::db::migrate(&url).await.expect("migrations");
    let db = connect(&url).await;
    let (user, selection) = seed(&db).await;
    db.execute("INSERT INTO user_profiles (user_id) VALUES ($1)", &[&user])
        .await
        .unwrap();
    db.execute(
        "INSERT INTO user_preferences (user_id) VALUES ($1)",
        &[&user],
    )
    .await
    .unwrap();
    let app = common::spawn_app_at(&url, |_| {}).await;
    let redis = winzo::redis_client::connect(&app.settings.redis).expect("redis");
    let (token, _) =
        winzo::auth::session::create(&redis, user.into(), winzo::auth::Role::User, 3600)
            .await
            .expect("session");

    let mut backup = script("backup.sh");
    backup.arg("pitr");
    clusters.script_env(&mut backup, port);
    let out = run(&mut backup, "scripts/backup.sh");
    let backup_dir = out.lines().last().expect("backup path").trim().to_string();
    assert!(Path::new(&backup_dir).join("base.tar.gz").exists(), "{out}");

    let mut before = BTreeSet::new();
    for _ in 0..3 {
        before.insert(place_bet(&app, &token, selection).await);
    }
    // restore.sh picks "the newest backup that started before TARGET_TIME" comparing whole
    // seconds (a backup's start time has no fraction): note the time only once the clock's
    // second is past the first backup's start second.
    let info = std::fs::read_to_string(Path::new(&backup_dir).join("winzo-backup.info")).unwrap();
    let backup_start = info
        .lines()
        .find_map(|l| l.strip_prefix("start_time="))
        .expect("start_time")
        .to_string();
    common::wait_until(
        "the clock's second to pass the backup's start",
        Duration::from_secs(10),
        || async {
            db.query_one(
                "SELECT date_trunc('second', clock_timestamp()) > $1::text::timestamptz",
                &[&backup_start],
            )
            .await
            .unwrap()
            .get::<_, bool>(0)
        },
    )
    .await;
    let noted: String = db
        .query_one(
            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC',
                            'YYYY-MM-DD HH24:MI:SS.US') || '+00'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // Later bets commit after the noted time (microseconds, as recovery_target_time reads it).
    common::wait_until(
        "the clock to pass the noted time",
        Duration::from_secs(10),
        || async {
            db.query_one(
                "SELECT clock_timestamp() > $1::text::timestamptz",
                &[&noted],
            )
            .await
            .unwrap()
            .get::<_, bool>(0)
        },
    )
    .await;
    let mut after = BTreeSet::new();
    for _ in 0..2 {
        after.insert(place_bet(&app, &token, selection).await);
    }
    // A newer backup, taken after the noted time: the restore must not pick it (it cannot
    // go back before its own start) but the older one.
    let newer = run(&mut backup, "scripts/backup.sh (second)");
    assert_ne!(newer.lines().last(), Some(backup_dir.as_str()));
    switch_wal_and_wait(&db, &archive).await;

    let restored = clusters.root.join("restored");
    let restored_port = free_port();
    clusters.data_dirs.push(restored.clone());
    let mut restore = script("restore.sh");
    restore
        // "": the default, the newest backup that started before TARGET_TIME.
        .args(["pitr", "", &restored.to_string_lossy()])
        .arg(restored_port.to_string())
        .env("TARGET_TIME", &noted);
    clusters.script_env(&mut restore, port);
    let out = run(&mut restore, "scripts/restore.sh");
    let restored_url = out.lines().last().expect("restored URL").trim().to_string();
    assert_eq!(
        restored_url,
        format!("postgres://winzo@127.0.0.1:{restored_port}/winzo")
    );
    let auto_conf =
        std::fs::read_to_string(restored.join("postgresql.auto.conf")).unwrap_or_default();
    assert!(
        auto_conf.contains(&format!("from {backup_dir}")),
        "{auto_conf}"
    );

    let copy = connect(&restored_url).await;
    let in_recovery: bool = copy
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!in_recovery, "the copy was promoted");
    assert_eq!(
        bet_ids(&copy).await,
        before,
        "exactly the bets before {noted}"
    );
    assert!(
        bet_ids(&db).await.is_superset(&after),
        "the primary kept all"
    );
    let balance: Decimal = copy
        .query_one(
            "SELECT balance FROM user_balances WHERE user_id = $1",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(balance, FUNDS - STAKE * Decimal::from(3));
    assert_ledger_clean(&restored_url).await;
    // The restored archive settings: the copy never writes into the primary's archive.
    let archive_mode: String = copy
        .query_one("SHOW archive_mode", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(archive_mode, "off");
    app.stop().await;

    // Retention: with WINZO_BACKUP_KEEP=1 one more backup leaves only itself, and no
    // archived segment older than its start.
    backup.env("WINZO_BACKUP_KEEP", "1");
    let latest = run(&mut backup, "scripts/backup.sh (retention)");
    let latest = PathBuf::from(latest.lines().last().expect("backup path").trim());
    let kept: Vec<_> = std::fs::read_dir(clusters.root.join("backups"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let info = std::fs::read_to_string(latest.join("winzo-backup.info")).unwrap();
    let start = info
        .lines()
        .find_map(|l| l.strip_prefix("start_wal="))
        .expect("start_wal")
        .to_string();
    for entry in std::fs::read_dir(&archive).unwrap().filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.len() < 24 {
            continue; // a timeline history file, not a segment
        }
        assert!(name[8..24] >= start[8..], "{name} is older than {start}");
    }
}
