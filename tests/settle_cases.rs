//! The table of settlement cases through the real API: singles for each result and
//! factor, parlays with a void, push and lost leg, a dead heat, a half-void, a system bet;
//! parlays settle when their last leg does; balances and check-ledger agree.
mod bets_support;
mod common;
mod markets_support;
mod settle_support;

use bets_support::{bettor, place, single};
use markets_support::account;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use settle_support::*;
use uuid::Uuid;
use winzo::auth::Role;

fn combo(kind: &str, legs: &[(Uuid, &str)], key: &str, size: Option<u32>) -> Value {
    let legs: Vec<Value> = legs
        .iter()
        .map(|(s, o)| json!({"selection_id": s, "odds": o}))
        .collect();
    let mut v = json!({"type": kind, "stake": "10.00", "legs": legs, "idempotency_key": key});
    if let Some(k) = size {
        v["system_size"] = json!(k);
    }
    v
}

#[tokio::test]
async fn every_case_of_the_table_pays_what_the_rules_say() {
    let app = common::spawn_app().await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let (user, token) = bettor(&app.db.client, dec!(1000.00)).await;
    // Three events; on each, the totals market: Over 2.5, Under 1.5, Exactly 9.0.
    let (a, b, c) = (
        book(&app, &trader).await,
        book(&app, &trader).await,
        book(&app, &trader).await,
    );
    let (ta, tb, tc) = (&a.selections[1], &b.selections[1], &c.selections[1]);
    let odds = ["2.5000", "1.5000", "9.0000"];
    let mut singles = Vec::new();
    for (n, sels) in [ta, tb, tc].into_iter().enumerate() {
        for (i, sel) in sels.iter().enumerate() {
            let (s, bet) = place(
                &app,
                &token,
                &single(*sel, odds[i], "10.00", &format!("s{n}{i}")),
            )
            .await;
            assert_eq!(s, 201, "{bet}");
            singles.push(bet_id(&bet));
        }
    }
    let mut combos = Vec::new();
    for (key, kind, legs, size) in [
        (
            "p1",
            "parlay",
            vec![(ta[0], "2.5000"), (tb[1], "1.5000")],
            None,
        ),
        (
            "p2",
            "parlay",
            vec![(ta[2], "9.0000"), (tc[0], "2.5000")],
            None,
        ),
        (
            "p3",
            "parlay",
            vec![(ta[0], "2.5000"), (tc[1], "1.5000")],
            None,
        ),
        (
            "y1",
            "system",
            vec![(ta[0], "2.5000"), (tc[0], "2.5000"), (tb[2], "9.0000")],
            Some(2),
        ),
    ] {
        let (s, bet) = place(&app, &token, &combo(kind, &legs, key, size)).await;
        assert_eq!(s, 201, "{bet}");
        combos.push(bet_id(&bet));
    }
    let placed = balance(&app, user).await;
    assert_eq!(
        placed,
        dec!(1000.00) - dec!(90.00) - dec!(30.00) - dec!(30.00)
    );

    // A: Over wins, Under loses, Exactly pushes.
    settle_ok(
        &app,
        &trader,
        a.markets[1],
        "settle",
        results(&[
            (ta[0], "win", None, None),
            (ta[1], "loss", None, None),
            (ta[2], "push", None, None),
        ]),
    )
    .await;
    // Parlays wait for their last leg.
    assert_eq!(bet_row(&app, combos[0]).await.0, "accepted");
    // B: Over dead heat 1/2, Under void, Exactly half-void loss.
    settle_ok(
        &app,
        &trader,
        b.markets[1],
        "settle",
        results(&[
            (tb[0], "win", Some("0.5"), None),
            (tb[1], "void", None, None),
            (tb[2], "loss", None, Some("0.5")),
        ]),
    )
    .await;
    // C: Over half-void win, Under loses, Exactly loses.
    settle_ok(
        &app,
        &trader,
        c.markets[1],
        "settle",
        results(&[
            (tc[0], "win", None, Some("0.5")),
            (tc[1], "loss", None, None),
            (tc[2], "loss", None, None),
        ]),
    )
    .await;

    let expected: [(&str, Decimal); 9] = [
        ("settled_win", dec!(25.00)),  // 10 × 2.5
        ("settled_loss", dec!(0)),     // lost
        ("settled_push", dec!(10.00)), // push: stake back
        ("settled_win", dec!(12.50)),  // dead heat: 10 × 0.5 × 2.5
        ("settled_push", dec!(10.00)), // void: stake back
        ("settled_win", dec!(5.00)),   // half-void loss: 10 × 0.5
        ("settled_win", dec!(17.50)),  // half-void win: 10 × (0.5 + 0.5 × 2.5)
        ("settled_loss", dec!(0)),
        ("settled_loss", dec!(0)),
    ];
    for (bet, (status, payout)) in singles.iter().zip(expected) {
        assert_eq!(
            bet_row(&app, *bet).await,
            (status.to_string(), payout),
            "single {bet}"
        );
    }
    let expected_combos: [(&str, Decimal); 4] = [
        ("settled_win", dec!(25.00)), // 2.5 × void leg at 1.00
        ("settled_win", dec!(17.50)), // push leg at 1.00 × 1.75
        ("settled_loss", dec!(0)),    // a lost leg loses the parlay
        // lines of 2 at 10: 2.5×1.75 = 43.75, 2.5×0.5 = 12.50, 1.75×0.5 = 8.75
        ("settled_win", dec!(65.00)),
    ];
    for (bet, (status, payout)) in combos.iter().zip(expected_combos) {
        assert_eq!(
            bet_row(&app, *bet).await,
            (status.to_string(), payout),
            "combo {bet}"
        );
    }
    let paid: Decimal = dec!(187.50); // 25 + 10 + 12.50 + 10 + 5 + 17.50 + 25 + 17.50 + 65
    assert_eq!(balance(&app, user).await, placed + paid);
    // Legs carry their results, the market its final status.
    let legs: i64 = app
        .db
        .client
        .query_one(
            "SELECT count(*) FROM bet_selections bs JOIN bets b ON b.id = bs.bet_id
                    WHERE b.user_id = $1 AND (bs.result IS NULL OR bs.settled_at IS NULL)",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(legs, 0);
    let status: String = app
        .db
        .client
        .query_one(
            "SELECT status::text FROM markets WHERE id = $1",
            &[&a.markets[1]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "settled");
    // The history shows the payout.
    let r = app
        .http
        .get(app.url(&format!("/api/v1/bets/{}", singles[0])))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let h: Value = r.json().await.unwrap();
    assert_eq!(h["payout"], "25.00", "{h}");
    ledger_clean(&app).await;
}

#[tokio::test]
async fn settling_needs_a_result_for_every_selection_and_valid_factors() {
    let app = common::spawn_app().await;
    let (_, trader) = account(&app.db.client, Role::Moderator).await;
    let b = book(&app, &trader).await;
    let t = &b.selections[1];
    let (s, body) = trade(
        &app,
        &trader,
        b.markets[1],
        "settle",
        results(&[(t[0], "win", None, None)]),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    let (s, body) = trade(
        &app,
        &trader,
        b.markets[1],
        "settle",
        results(&[
            (t[0], "loss", Some("0.5"), None),
            (t[1], "win", None, None),
            (t[2], "loss", None, None),
        ]),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    let (s, body) = trade(
        &app,
        &trader,
        b.markets[1],
        "settle",
        results(&[
            (t[0], "win", None, Some("1.5")),
            (t[1], "loss", None, None),
            (t[2], "loss", None, None),
        ]),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    let (s, body) = trade(
        &app,
        &trader,
        b.markets[1],
        "resettle",
        results(&[
            (t[0], "win", None, None),
            (t[1], "loss", None, None),
            (t[2], "loss", None, None),
        ]),
    )
    .await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["error"]["code"], "not_settled");
    // Nothing was settled: the market still trades.
    let status: String = app
        .db
        .client
        .query_one(
            "SELECT status::text FROM markets WHERE id = $1",
            &[&b.markets[1]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "open");
}
