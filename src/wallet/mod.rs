//! The wallet: shard actors that own balances (one writer per user), the payment
//! processors, and the handle the HTTP layer uses to reach the right shard.
//!
//! Users are hashed over a fixed number of [`shard::WalletShard`] actors. A shard
//! serializes every balance change of its users and acknowledges one only after the
//! balance row and its `transactions` row are committed in one Postgres transaction.
//! Each shard's mailbox is bounded (`wallet.shard_mailbox_capacity`); a full mailbox is
//! answered 503 `busy` rather than queued without limit.
use std::sync::Arc;

use actix::{Actor, Addr};
use deadpool_postgres::Pool;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::error::ApiError;

pub mod credits;
pub mod processor;
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
    /// Starts `count` shard actors in the current actix system.
    pub fn start(
        count: usize,
        mailbox_capacity: usize,
        accounts_cached_max: usize,
        pool: Pool,
        processor: Arc<dyn PaymentProcessor>,
    ) -> Wallet {
        let count = count.max(1);
        let shards = (0..count)
            .map(|index| {
                let pool = pool.clone();
                let processor = processor.clone();
                WalletShard::create(move |ctx| {
                    ctx.set_mailbox_capacity(mailbox_capacity);
                    WalletShard::new(index, pool, processor, accounts_cached_max)
                })
            })
            .collect();
        Wallet {
            shards: Arc::new(shards),
        }
    }

    /// The shard that owns `user_id` (fixed for the node's life: a stable hash of the id).
    pub fn shard_of(&self, user_id: Uuid) -> &Addr<WalletShard> {
        let index = (user_id.as_u128() % self.shards.len() as u128) as usize;
        &self.shards[index]
    }

    /// Sends a deposit or withdrawal to its shard and waits for the committed answer.
    /// A full mailbox is 503 `busy`; a stopped shard is 503 `unavailable`.
    pub async fn move_money(
        &self,
        msg: impl FnOnce(oneshot::Sender<Result<MoveOutcome, WalletError>>) -> MoveMoney,
        user_id: Uuid,
    ) -> Result<Result<MoveOutcome, WalletError>, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.shard_of(user_id)
            .try_send(msg(tx))
            .map_err(|err| match err {
                actix::dev::SendError::Full(_) => ApiError::busy("wallet"),
                actix::dev::SendError::Closed(_) => ApiError::unavailable("wallet stopped"),
            })?;
        rx.await
            .map_err(|_| ApiError::unavailable("wallet dropped the request; retry shortly"))
    }
}

/// Starts nothing: the actor type is started through [`Wallet::start`].
impl Actor for WalletShard {
    type Context = actix::Context<Self>;
}
