//! The cash-out watcher: markets tell it which selections changed price (a bounded queue,
//! `actors::PriceMoves`); it gathers changes for `watch_batch_ms`, reads the open bets on
//! those selections, pushes each bettor a `cash_out` offer (at most one per bet per
//! `offer_push_interval_ms`) and fires the automatic cash-out of every armed bet whose offer
//! reached its threshold. Thresholds live in `bets.auto_cash_out_threshold`, so nothing
//! armed is lost to a restart; a cash-out that fails (a suspension during the delay, a
//! price back below) leaves the bet armed for the next change.
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use tokio::sync::mpsc;

use super::CashOutService;
use crate::actors::PriceMove;
use crate::domain::ids::{BetId, SelectionId};

/// Bets whose last push time is remembered; beyond it the memory is cleared.
const PUSHED_REMEMBERED_MAX: usize = 100_000;

/// Runs until every market's sender is gone.
pub async fn run(svc: CashOutService, mut rx: mpsc::Receiver<PriceMove>) {
    let batch = std::time::Duration::from_millis(svc.settings.watch_batch_ms);
    let mut pushed: HashMap<BetId, Instant> = HashMap::new();
    while let Some(first) = rx.recv().await {
        let mut selections: HashSet<SelectionId> = first.selections.into_iter().collect();
        let deadline = tokio::time::Instant::now() + batch;
        while let Ok(Some(more)) = tokio::time::timeout_at(deadline, rx.recv()).await {
            selections.extend(more.selections);
        }
        let selections: Vec<SelectionId> = selections.into_iter().collect();
        if let Err(e) = look(&svc, &selections, &mut pushed).await {
            tracing::warn!(error = %e, "cash-out watcher: bets could not be read");
        }
    }
    tracing::debug!("cash-out watcher stopped");
}

async fn look(
    svc: &CashOutService,
    selections: &[SelectionId],
    pushed: &mut HashMap<BetId, Instant>,
) -> Result<(), super::CashOutError> {
    let bets = {
        let client = svc.db.get().await?;
        let ids =
            crate::db::cashout::open_bets_on(&client, selections, svc.settings.watch_bets_max)
                .await?;
        crate::db::cashout::load_bets(&client, &ids).await?
    };
    let interval = std::time::Duration::from_millis(svc.settings.offer_push_interval_ms);
    if pushed.len() > PUSHED_REMEMBERED_MAX {
        pushed.clear();
    }
    for bet in bets {
        let Ok(value) = svc.value_now(&bet, false).await else {
            continue;
        };
        let armed = bet
            .auto_threshold
            .and_then(|t| crate::domain::Money::from_decimal(t).ok());
        if let Some(threshold) = armed {
            if value >= threshold {
                let svc = svc.clone();
                tokio::spawn(async move {
                    match svc.take_auto(&bet, threshold).await {
                        Ok(()) => tracing::info!(bet = %bet.id, %value, "automatic cash-out"),
                        Err(e) => {
                            tracing::info!(bet = %bet.id, error = %e, "automatic cash-out not taken; stays armed")
                        }
                    }
                });
                continue;
            }
        }
        let due = pushed.get(&bet.id).is_none_or(|t| t.elapsed() >= interval);
        if due {
            if let Ok(offer) = svc.quote(&bet, value) {
                svc.hub.publish(
                    &crate::broadcast::user_topic(bet.user_id),
                    "cash_out",
                    &offer,
                );
                pushed.insert(bet.id, Instant::now());
            }
        }
    }
    Ok(())
}
