//! Market and event actors without HTTP: topic messages with contiguous seq, and the
//! bet path's check-and-reserve (status, odds policy, stake limits, liability, in-play delay).
//! The writer queue is drained by the test (no Postgres needed here).
mod common;

use std::sync::Arc;
use std::time::Duration;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use uuid::Uuid;
use winzo::actors::event::{CommandAllMarkets, GetEvent, SetEventStatus};
use winzo::actors::market::{
    ApplyCommand, CheckAndReserve, ConfirmReservation, GetLiability, LegRequest, MarketActor,
    SetPrices,
};
use winzo::actors::{AuditActor, LegRejection, Registry, Shared, WriterHandle};
use winzo::broadcast::Hub;
use winzo::db::markets::{EventRow, MarketRow, SelectionRow};
use winzo::domain::ids::{EventId, MarketId, SelectionId};
use winzo::domain::{EventStatus, MarketCommand, MarketStatus, MarketType, Odds, OddsChangePolicy};

struct Fixture {
    registry: Registry,
    hub: Arc<Hub>,
    event: EventRow,
    market: actix::Addr<MarketActor>,
    sels: Vec<SelectionId>,
}

fn odds(s: &str) -> Odds {
    Odds::parse(s, dec!(1000)).unwrap()
}

async fn fixture(delay_ms: u32) -> Fixture {
    let mut settings = winzo::config::load_for("test").unwrap();
    settings.markets.defaults.bet_delay_ms = delay_ms;
    settings.markets.sports.clear();
    let hub = Arc::new(Hub::new(64));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<winzo::actors::writer::WriteOp>(1024);
    tokio::spawn(async move {
        while let Some(op) = rx.recv().await {
            if let Some(d) = op.done {
                let _ = d.send(());
            }
        }
    });
    let shared = Arc::new(Shared {
        markets: settings.markets.clone(),
        hub: hub.clone(),
        writer: WriterHandle::from_sender(tx),
        price_moves: Default::default(),
        currencies: Default::default(),
    });
    let registry = Registry::new(shared, winzo::db::build_pool(&settings.database).unwrap());
    let event = EventRow {
        id: EventId::new_random(),
        sport_id: Uuid::new_v4(),
        sport_slug: "test-sport".into(),
        league_id: None,
        home_team_id: Uuid::new_v4(),
        away_team_id: Uuid::new_v4(),
        home_team_name: "H".into(),
        away_team_name: "A".into(),
        start_time: chrono::Utc::now() + chrono::Duration::hours(1),
        status: EventStatus::Scheduled,
        period: None,
        clock: None,
        home_score: 0,
        away_score: 0,
        venue: None,
    };
    registry.start_event(event.clone());
    let market_id = MarketId::new_random();
    let rows: Vec<SelectionRow> = ["Home", "Away"]
        .iter()
        .map(|n| SelectionRow {
            id: SelectionId::new_random(),
            market_id,
            name: n.to_string(),
            odds: dec!(2.0000),
        })
        .collect();
    let sels = rows.iter().map(|s| s.id).collect();
    let row = MarketRow {
        id: market_id,
        event_id: event.id,
        market_type: MarketType::Moneyline,
        name: "Winner".into(),
        handicap: None,
        total_points: None,
        status: MarketStatus::Open,
        in_play: false,
        feed_suspended: false,
        settings: Default::default(),
    };
    let market = registry
        .start_market(&event, row, rows, &Default::default())
        .unwrap();
    // The event actor learns of its market by a message: wait until it lists it.
    let ev = registry.running_event(event.id).unwrap();
    common::wait_until(
        "the event actor to list its market",
        Duration::from_secs(10),
        || async {
            let (_, markets) = registry
                .ask_within(&ev, Duration::from_secs(5), |reply| GetEvent { reply })
                .await
                .unwrap();
            markets.len() == 1
        },
    )
    .await;
    Fixture {
        registry,
        hub,
        event,
        market,
        sels,
    }
}

fn leg(
    selection_id: SelectionId,
    asked: &str,
    policy: OddsChangePolicy,
    stake: Decimal,
) -> LegRequest {
    LegRequest {
        referable: false,
        selection_id,
        odds: odds(asked),
        policy,
        stake,
        payout: None,
        currency_code: "USD".into(),
        stake_factor: Decimal::ONE,
        user_max_stake: None,
    }
}

async fn reserve(
    f: &Fixture,
    l: LegRequest,
) -> Result<winzo::actors::market::Reservation, LegRejection> {
    f.registry
        .ask_within(&f.market, Duration::from_secs(5), |reply| CheckAndReserve {
            leg: l,
            reply,
        })
        .await
        .unwrap()
}

async fn set_price(f: &Fixture, sel: SelectionId, o: &str) {
    let prices = vec![(sel, odds(o)), (f.sels[1], odds("1.9000"))];
    let (_, d) = f
        .registry
        .ask_within(&f.market, Duration::from_secs(5), |reply| SetPrices {
            prices,
            actor: AuditActor::default(),
            reply,
        })
        .await
        .unwrap()
        .unwrap();
    d.await.unwrap();
}

#[actix_web::test]
async fn price_changes_reach_the_event_topic_in_order() {
    let f = fixture(0).await;
    let topic = winzo::broadcast::event_topic(f.event.id);
    let (_, mut rx, seq0) = f.hub.subscribe(&topic);
    for o in ["2.1000", "2.2000", "2.3000"] {
        set_price(&f, f.sels[0], o).await;
    }
    let mut seqs = Vec::new();
    for _ in 0..3 {
        let m = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.kind, "odds");
        seqs.push(m.seq);
        let v: serde_json::Value = serde_json::from_slice(m.text.as_bytes()).unwrap();
        assert_eq!(v["topic"], topic.as_str());
        assert_eq!(
            v["data"]["market_id"],
            f.registry
                .market_of_selection(f.sels[0])
                .unwrap()
                .to_string()
        );
    }
    assert_eq!(seqs, vec![seq0 + 1, seq0 + 2, seq0 + 3]);
}

#[actix_web::test]
async fn check_and_reserve_applies_status_policy_stake_and_liability() {
    let f = fixture(0).await;
    let s = f.sels[0];
    assert_eq!(
        reserve(&f, leg(s, "2.1000", OddsChangePolicy::None, dec!(10)))
            .await
            .unwrap_err(),
        LegRejection::OddsChanged {
            current: odds("2.0000")
        }
    );
    assert!(
        reserve(&f, leg(s, "1.9000", OddsChangePolicy::Higher, dec!(10)))
            .await
            .is_ok()
    );
    assert!(matches!(
        reserve(&f, leg(s, "2.0000", OddsChangePolicy::None, dec!(0.01))).await,
        Err(LegRejection::StakeTooLow { .. })
    ));
    assert!(matches!(
        reserve(&f, leg(s, "2.0000", OddsChangePolicy::None, dec!(20000))).await,
        Err(LegRejection::StakeTooHigh { .. })
    ));
    assert_eq!(
        reserve(
            &f,
            leg(
                SelectionId::new_random(),
                "2.0000",
                OddsChangePolicy::Any,
                dec!(10)
            )
        )
        .await
        .unwrap_err(),
        LegRejection::UnknownSelection
    );
    // Liability: 250,000 payout per selection by default; reservations count at once.
    let big = reserve(&f, leg(s, "2.0000", OddsChangePolicy::None, dec!(10000)))
        .await
        .unwrap();
    assert_eq!(big.payout, dec!(20000.00));
    let lia = f
        .registry
        .ask_within(&f.market, Duration::from_secs(5), |reply| GetLiability {
            reply,
        })
        .await
        .unwrap();
    assert_eq!(lia.selections[0].reserved_stake, dec!(10010));
    f.market
        .send(ConfirmReservation {
            reservation_id: big.id,
        })
        .await
        .unwrap();
    let lia = f
        .registry
        .ask_within(&f.market, Duration::from_secs(5), |reply| GetLiability {
            reply,
        })
        .await
        .unwrap();
    assert_eq!(lia.selections[0].stake, dec!(10010));
    assert_eq!(lia.selections[0].payout, dec!(20020.00));
    for _ in 0..11 {
        let _ = reserve(&f, leg(s, "2.0000", OddsChangePolicy::None, dec!(10000))).await;
    }
    assert_eq!(
        reserve(&f, leg(s, "2.0000", OddsChangePolicy::None, dec!(10000)))
            .await
            .unwrap_err(),
        LegRejection::LiabilityExceeded
    );
    let (_, d) = f
        .registry
        .ask_within(&f.market, Duration::from_secs(5), |reply| ApplyCommand {
            command: MarketCommand::Suspend,
            actor: AuditActor::default(),
            skip_if_invalid: false,
            reply,
        })
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    d.await.unwrap();
    assert_eq!(
        reserve(&f, leg(f.sels[1], "2.0000", OddsChangePolicy::Any, dec!(1)))
            .await
            .unwrap_err(),
        LegRejection::MarketSuspended
    );
}

#[actix_web::test]
async fn in_play_legs_wait_for_the_delay_and_are_rechecked() {
    let f = fixture(300).await;
    let ev = f.registry.running_event(f.event.id).unwrap();
    let fan = f
        .registry
        .ask_within(&ev, Duration::from_secs(5), |reply| SetEventStatus {
            status: EventStatus::Live,
            period: None,
            clock: None,
            actor: AuditActor::default(),
            reply,
        })
        .await
        .unwrap()
        .unwrap();
    for rx in fan.in_play {
        rx.await.unwrap().unwrap();
    }
    // Untouched during the delay: accepted after it.
    let t = std::time::Instant::now();
    let r = reserve(
        &f,
        leg(f.sels[0], "2.0000", OddsChangePolicy::None, dec!(5)),
    )
    .await
    .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300) && r.in_play);
    // A price move against the policy during the delay rejects the leg.
    let (tx, rx) = tokio::sync::oneshot::channel();
    f.market
        .try_send(CheckAndReserve {
            leg: leg(f.sels[0], "2.0000", OddsChangePolicy::None, dec!(5)),
            reply: tx,
        })
        .unwrap();
    set_price(&f, f.sels[0], "1.9500").await;
    assert_eq!(
        rx.await.unwrap().unwrap_err(),
        LegRejection::OddsChanged {
            current: odds("1.9500")
        }
    );
    // A suspension during the delay rejects it too.
    let (tx, rx) = tokio::sync::oneshot::channel();
    f.market
        .try_send(CheckAndReserve {
            leg: leg(f.sels[0], "1.9500", OddsChangePolicy::None, dec!(5)),
            reply: tx,
        })
        .unwrap();
    let fan = f
        .registry
        .ask_within(&ev, Duration::from_secs(5), |reply| CommandAllMarkets {
            command: MarketCommand::Suspend,
            actor: AuditActor::default(),
            reply,
        })
        .await
        .unwrap();
    for m in fan.markets {
        m.await.unwrap().unwrap();
    }
    assert_eq!(
        rx.await.unwrap().unwrap_err(),
        LegRejection::MarketSuspended
    );
    let lia = f
        .registry
        .ask_within(&f.market, Duration::from_secs(5), |reply| GetLiability {
            reply,
        })
        .await
        .unwrap();
    assert_eq!(
        lia.selections[0].reserved_stake,
        dec!(5),
        "rejected legs released; the first still reserved"
    );
}
