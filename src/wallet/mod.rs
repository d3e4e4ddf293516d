//! The wallet: shard actors that own balances (one writer per user), the payment
//! processors, and the handle the HTTP layer uses to reach the right shard.
//!
//! Users are hashed over a fixed number of [`shard::WalletShard`] actors. A shard
//! serializes every balance change of its users and acknowledges one only after the
//! balance row and its `transactions` row are committed in one Postgres transaction.
//! Each shard's mailbox is bounded (`wallet.shard_mailbox_capacity`); a full mailbox is
//! answered 503 `busy` rather than queued without limit.
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::domain::ids::UserId;

use actix::{Actor, Addr};
use deadpool_postgres::Pool;
use tokio::sync::oneshot;

pub mod bonus;
pub mod cashout;
pub mod credits;
pub mod fees;
pub mod processor;
pub mod referral;
pub mod shard;
pub mod stakes;

pub use processor::{PaymentProcessor, SandboxProcessor};
pub use shard::{MoveMoney, MoveOutcome, Movement, WalletError, WalletShard};

/// Addresses of every shard; cheap to clone into the app state.
#[derive(Clone)]
pub struct Wallet {
    shards: Arc<Vec<Addr<WalletShard>>>,
}

impl Wallet {
    /// Starts `settings.shards` shard actors on `arbiter` (the engine's book thread,
    /// `crate::book`). `controls_live` is true while control changes of every node reach
    /// this one (`auth::cache`); while it is false the shards read an account's controls
    /// again for every bet (fail closed).
    pub fn start(
        arbiter: &actix::ArbiterHandle,
        settings: &WalletSettings,
        pool: Pool,
        processor: Arc<dyn PaymentProcessor>,
        controls_live: Arc<AtomicBool>,
        hub: Arc<crate::broadcast::Hub>,
    ) -> Wallet {
        let count = settings.shards.max(1);
        let (mailbox_capacity, accounts_cached_max) = (
            settings.shard_mailbox_capacity,
            settings.shard_accounts_cached_max,
        );
        let shards = (0..count)
            .map(|index| {
                let pool = pool.clone();
                let processor = processor.clone();
                let live = controls_live.clone();
                let hub = hub.clone();
                WalletShard::start_in_arbiter(arbiter, move |ctx| {
                    ctx.set_mailbox_capacity(mailbox_capacity);
                    WalletShard::new(index, pool, processor, accounts_cached_max, live, hub)
                })
            })
            .collect();
        Wallet {
            shards: Arc::new(shards),
        }
    }

    /// The shard that owns `user_id` (fixed for the node's life: a stable hash of the id).
    pub fn shard_of(&self, user_id: UserId) -> &Addr<WalletShard> {
        let index = (user_id.as_uuid().as_u128() % self.shards.len() as u128) as usize;
        &self.shards[index]
    }

    /// Every shard forgets the cached controls of `user_id` (or of everyone), and answers
    /// once it has: a bet the shard takes afterwards reads them again. Waits for room in a
    /// full mailbox (a control change must not be lost).
    pub async fn forget_controls(&self, user_id: Option<UserId>) -> Result<(), WalletError> {
        self.tell(user_id, stakes::InvalidateControls { user_id })
            .await
    }

    /// Every shard forgets the cached bonus state (bonus balance, active bonus) of
    /// `user_id` (or of everyone), like [`Self::forget_controls`].
    pub async fn forget_bonus(&self, user_id: Option<UserId>) -> Result<(), WalletError> {
        self.tell(user_id, stakes::InvalidateBonus { user_id })
            .await
    }

    /// Sends `msg` to `user_id`'s shard (or to every shard) and waits until it was handled.
    async fn tell<M>(&self, user_id: Option<UserId>, msg: M) -> Result<(), WalletError>
    where
        M: actix::Message<Result = ()> + Clone + Send + 'static,
        WalletShard: actix::Handler<M>,
    {
        let sent = match user_id {
            Some(u) => self.shard_of(u).send(msg).await,
            None => {
                let all = self.shards.iter().map(|s| s.send(msg.clone()));
                futures::future::join_all(all)
                    .await
                    .into_iter()
                    .collect::<Result<Vec<()>, _>>()
                    .map(|_| ())
            }
        };
        sent.map_err(|_| WalletError::Unavailable("wallet stopped"))
    }

    /// Sends a deposit or withdrawal to its shard and waits for the committed answer.
    /// A full mailbox is `Busy`; a stopped shard `Unavailable`.
    pub async fn move_money(
        &self,
        msg: impl FnOnce(oneshot::Sender<Result<MoveOutcome, WalletError>>) -> MoveMoney,
        user_id: UserId,
    ) -> Result<MoveOutcome, WalletError> {
        let (tx, rx) = oneshot::channel();
        self.shard_of(user_id)
            .try_send(msg(tx))
            .map_err(|err| match err {
                actix::dev::SendError::Full(_) => WalletError::Busy,
                actix::dev::SendError::Closed(_) => WalletError::Unavailable("wallet stopped"),
            })?;
        rx.await
            .map_err(|_| WalletError::Unavailable("wallet dropped the request; retry shortly"))?
    }
}

/// Starts nothing: the actor type is started through [`Wallet::start`].
impl Actor for WalletShard {
    type Context = actix::Context<Self>;
}

/// Wallet shard actors and the money endpoints (issue 3).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct WalletSettings {
    /// Users are hashed over this many shard actors (fixed for the life of a node).
    pub shards: usize,
    /// Messages queued per shard before callers get 503 `busy`.
    pub shard_mailbox_capacity: usize,
    /// Accounts a shard keeps cached; beyond it the cache is cleared (reloaded on use).
    pub shard_accounts_cached_max: usize,
    /// Largest single deposit or withdrawal, a money string.
    pub amount_max: String,
    /// Largest page of `GET /wallet/transactions`.
    pub transactions_page_max: i64,
    /// Largest offset of `GET /wallet/transactions`.
    pub transactions_offset_max: i64,
    /// Payment methods one account may hold.
    pub payment_methods_per_user_max: i64,
}
