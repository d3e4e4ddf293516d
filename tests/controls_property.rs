//! Property test of account controls against the real engine (issue 14): random
//! interleavings of control changes (self-exclusion, status, daily cap, max stake, stake
//! factor) with bets on a warm account. No bet is ever accepted that the controls in force
//! at its acceptance forbid, and none they allow is refused for a control.
//!
//! One engine serves every case (each case has its own bettor); `PROPTEST_CASES` sets the
//! number of cases (256 by default).
mod common;
mod markets_support;

use markets_support::{account, create_book, post};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;
use winzo::auth::Role;

#[derive(Debug, Clone)]
enum Op {
    Bet { units: u32 },
    SelfExclude,
    Status { suspended: bool },
    DailyCap { units: u32 },
    MaxStake { units: Option<u32> },
    StakeFactor { thousandths: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1..40u32).prop_map(|units| Op::Bet { units }),
        1 => Just(Op::SelfExclude),
        2 => any::<bool>().prop_map(|suspended| Op::Status { suspended }),
        2 => prop::sample::select(vec![5u32, 20, 60, 1000]).prop_map(|units| Op::DailyCap { units }),
        2 => prop::option::of(prop::sample::select(vec![3u32, 10, 30]))
            .prop_map(|units| Op::MaxStake { units }),
        // Of the market's max stake 10,000.00: all of it, 50.00, 20.00.
        2 => prop::sample::select(vec![1000u32, 5, 2])
            .prop_map(|thousandths| Op::StakeFactor { thousandths }),
    ]
}

/// The controls in force, as the engine must apply them.
#[derive(Debug)]
struct Model {
    excluded: bool,
    suspended: bool,
    daily_cap: Decimal,
    max_stake: Option<Decimal>,
    factor_limit: Decimal,
    staked_today: Decimal,
}

impl Model {
    /// Why the controls forbid a bet of `stake` (`None`: they allow it), in the order the
    /// bet path checks them: the account (wallet shard), then the market's leg.
    fn forbids(&self, stake: Decimal) -> Option<&'static str> {
        if self.excluded || self.suspended {
            Some("account_restricted")
        } else if self.staked_today + stake > self.daily_cap {
            Some("limit_exceeded")
        } else if self.max_stake.is_some_and(|m| stake > m) || stake > self.factor_limit {
            Some("stake_too_high")
        } else {
            None
        }
    }
}

struct Env {
    app: common::TestApp,
    trader: String,
    selection: Uuid,
    redis: redis::aio::ConnectionManager,
}

async fn patch(env: &Env, path: &str, token: &str, body: Value) -> u16 {
    env.app
        .http
        .patch(env.app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn new_session(env: &Env, user: Uuid) -> String {
    winzo::auth::session::create(&env.redis, user.into(), Role::User, 600)
        .await
        .unwrap()
        .0
}

async fn run_case(env: &Env, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let user = common::fixtures::funded_user(&env.app.db.client, Decimal::from(10_000)).await;
    let mut token = new_session(env, user).await;
    let mut m = Model {
        excluded: false,
        suspended: false,
        daily_cap: Decimal::from(1000),
        max_stake: None,
        factor_limit: Decimal::from(10_000),
        staked_today: Decimal::ZERO,
    };
    let user_path = format!("/api/v1/trading/users/{user}");
    // Warm the account: its controls are now cached by its wallet shard.
    let mut ops = ops;
    ops.insert(0, Op::Bet { units: 1 });
    for op in ops {
        match op {
            Op::Bet { units } => {
                let stake = Decimal::from(units);
                let body = json!({"type": "single", "stake": format!("{units}.00"), "odds_change": "any",
                    "legs": [{"selection_id": env.selection, "odds": "2.5000"}],
                    "idempotency_key": Uuid::new_v4().to_string()});
                let (status, answer) =
                    post(&env.app.http, env.app.url("/api/v1/bets"), &token, body).await;
                let forbidden = m.forbids(stake);
                match forbidden {
                    Some(code) => {
                        prop_assert_ne!(status, 201, "accepted against {}: {:?}", code, m);
                        prop_assert_eq!(&answer["error"]["code"], code, "{:?}", m);
                    }
                    None => {
                        prop_assert_eq!(
                            status,
                            201,
                            "refused within the controls {:?}: {}",
                            m,
                            answer
                        );
                        m.staked_today += stake;
                    }
                }
            }
            Op::SelfExclude => {
                let r = post(
                    &env.app.http,
                    env.app.url("/api/v1/me/self-exclusion"),
                    &token,
                    json!({"days": 30}),
                )
                .await;
                prop_assert!(r.0 == 200 || r.0 == 409, "self-exclusion {:?}", r);
                m.excluded = true;
                token = new_session(env, user).await; // logs in again
            }
            Op::Status { suspended } => {
                let status = if suspended { "suspended" } else { "active" };
                let s = patch(env, &user_path, &env.trader, json!({"status": status})).await;
                prop_assert_eq!(s, 200);
                m.suspended = suspended;
                token = new_session(env, user).await;
            }
            Op::DailyCap { units } => {
                let cap = Decimal::from(units);
                let s = patch(
                    env,
                    "/api/v1/me/preferences",
                    &token,
                    json!({"betting_limits": {"daily": format!("{units}.00")}}),
                )
                .await;
                if s == 200 {
                    // A cut binds now; a raise waits for the cooling-off (a day).
                    m.daily_cap = m.daily_cap.min(cap);
                } else {
                    prop_assert_eq!(s, 401, "only an ended session may fail");
                }
            }
            Op::MaxStake { units } => {
                let v = units.map(|u| format!("{u}.00"));
                let s = patch(env, &user_path, &env.trader, json!({"max_stake": v})).await;
                prop_assert_eq!(s, 200);
                m.max_stake = units.map(Decimal::from);
            }
            Op::StakeFactor { thousandths } => {
                let factor = Decimal::new(i64::from(thousandths), 3);
                let s = patch(
                    env,
                    &user_path,
                    &env.trader,
                    json!({"stake_factor": factor.to_string()}),
                )
                .await;
                prop_assert_eq!(s, 200);
                m.factor_limit = Decimal::from(10_000) * factor;
            }
        }
    }
    Ok(())
}

#[test]
fn no_bet_is_accepted_that_the_controls_in_force_forbid() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let env = rt.block_on(async {
        let app = common::spawn_app().await;
        let (_, trader) = account(&app.db.client, Role::Admin).await;
        let book = create_book(&app.http, &app.address, &trader).await;
        // Every case bets on the same selection: room for all of them.
        let r = app
            .http
            .patch(app.url(&format!("/api/v1/trading/markets/{}/settings", book.markets[1])))
            .bearer_auth(&trader)
            .json(&json!({"max_liability_selection": "50000000.00", "max_liability_market": "50000000.00"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let settings = common::test_settings();
        Env {
            selection: book.selections[1][0],
            redis: winzo::redis_client::connect(&settings.redis).unwrap(),
            trader,
            app,
        }
    });
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(op(), 1..12), |ops| {
        rt.block_on(run_case(&env, ops))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
