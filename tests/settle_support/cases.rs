//! What the money property tests share: one engine with a trader and two events for every
//! case, a Redis handle for bettors' sessions, a pool for the ledger check, and markets of
//! each case's own (a total on an unused line, so cases never share a market).
use std::sync::atomic::{AtomicU32, Ordering};

use proptest::strategy::Strategy;
use proptest::test_runner::Config;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;
use winzo::auth::Role;

use crate::common::{self, TestApp};
use crate::markets_support::{account, post};

pub struct Env {
    pub app: TestApp,
    pub trader: String,
    pub events: [Uuid; 2],
    pub redis: redis::aio::ConnectionManager,
    pub pool: deadpool_postgres::Pool,
    next_line: AtomicU32,
}

/// A case's own market: its id and its selections (Over, Under, Exactly).
pub struct Market {
    pub id: Uuid,
    pub selections: Vec<Uuid>,
}

impl Env {
    /// The engine, a trader and two books; a ledger pool of `workers` connections.
    pub async fn start(workers: u32) -> Env {
        let app = common::spawn_app().await;
        let (_, trader) = account(&app.db.client, Role::Moderator).await;
        let books = [
            super::book(&app, &trader).await,
            super::book(&app, &trader).await,
        ];
        let redis = winzo::redis_client::connect(&app.settings.redis).unwrap();
        let mut db = app.settings.database.clone();
        db.pool_max_size = workers as usize;
        let pool = winzo::db::build_pool(&db).unwrap();
        Env {
            events: [books[0].event_id, books[1].event_id],
            app,
            trader,
            redis,
            pool,
            // The books' own total is on 2.5.
            next_line: AtomicU32::new(3),
        }
    }

    /// A new bettor with `funds` (backed by a deposit) and a session: (user id, token).
    pub async fn bettor(&self, funds: Decimal) -> (Uuid, String) {
        let id = common::fixtures::funded_users(&self.app.db.client, funds, 1).await[0];
        let (token, _) = winzo::auth::session::create(&self.redis, id.into(), Role::User, 3600)
            .await
            .expect("session");
        (id, token)
    }

    /// A new total market on `event` priced 2.5 / 1.5 / 9.0, on a line of its own.
    pub async fn total_market(&self, event: Uuid) -> Market {
        let line = self.next_line.fetch_add(1, Ordering::Relaxed);
        let (s, m) = post(
            &self.app.http,
            self.app
                .url(&format!("/api/v1/trading/events/{event}/markets")),
            &self.trader,
            json!({"type": "total_points", "name": format!("Total goals {line}.5"),
                   "total_points": format!("{line}.50"),
                   "selections": [{"name": "Over", "odds": "2.5000"}, {"name": "Under", "odds": "1.5000"},
                                  {"name": "Exactly", "odds": "9.0000"}]}),
        )
        .await;
        assert_eq!(s, 201, "{m}");
        let id = |v: &Value| v["id"].as_str().unwrap().parse::<Uuid>().unwrap();
        Market {
            id: id(&m),
            selections: m["selections"].as_array().unwrap().iter().map(id).collect(),
        }
    }

    /// No ledger invariant is broken (for everyone: it holds at any moment).
    pub async fn ledger_clean(&self) {
        let violations = winzo::ledger_check::check(&self.pool.get().await.unwrap())
            .await
            .unwrap();
        assert!(violations.is_empty(), "{violations:?}");
    }
}

/// One case's run, borrowing the shared [`Env`].
pub type Case<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;

/// Runs the property's cases (`PROPTEST_CASES`, `workers` at a time) against one engine.
pub fn run_cases<S, F>(workers: u32, strategy: &S, case: F)
where
    S: Strategy + Sync,
    S::Value: std::fmt::Debug,
    F: for<'a> Fn(&'a Env, S::Value) -> Case<'a> + Sync,
{
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(Env::start(workers));
    let config = Config {
        cases: common::property::cases(),
        failure_persistence: None,
        ..Config::default()
    };
    common::property::run(&rt, config, workers, strategy, |p| case(&env, p));
    rt.block_on(env.app.stop());
}
