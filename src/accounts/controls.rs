//! One path for account controls: status, self-exclusion, stake factor, max stake,
//! betting limits and role. Whatever door a change comes through (a trader's PATCH, the
//! bettor's own limits or self-exclusion), once it is committed in Postgres it goes through
//! [`AccountControls::changed`], which makes every holder of the old values drop them
//! before the change's answer is returned:
//!
//! - on this node, at once and awaited: the session cache (when sessions end), the wallet
//!   shard that caches the account's controls for the bet path, and the open WebSockets
//!   (through the cache's notices);
//! - on every other node, through the Redis revocation channel in the same atomic step
//!   that ends the sessions (`auth::session`); each node's subscriber hands the message to
//!   its own holders ([`spawn_wallet_listener`], the WebSocket sessions).
//!
//! When the channel is down, holders fail closed: the session cache is bypassed, the
//! wallet shards read controls again for every bet, and sockets check their session with
//! Redis again.
use std::sync::Arc;

use redis::aio::ConnectionManager;
use tokio::sync::broadcast::error::RecvError;

use crate::auth::cache::{Notice, SessionCache};
use crate::auth::session;
use crate::domain::ids::UserId;
use crate::wallet::Wallet;

/// What a committed change means for the account's holders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Every session ends too: a suspension, ban, self-exclusion or role change.
    EndSessions,
    /// Only the bet path's controls: caps, stake factor, max stake, reactivation.
    Controls,
    /// The account's bonus state (bonus balance, active bonus, free bets): a grant, an
    /// expiry, a conversion, a settlement's bonus share. Sessions and controls stay.
    Bonus,
}

/// Why a committed change could not be handed on.
#[derive(Debug)]
pub enum ControlsError {
    /// Redis (the sessions and the channel to other nodes) did not answer.
    Propagation(redis::RedisError),
    /// This node's wallet is stopping.
    WalletStopped,
}

/// The handles a control change must reach.
#[derive(Clone)]
pub struct AccountControls {
    redis: ConnectionManager,
    sessions: Arc<SessionCache>,
    wallet: Wallet,
}

impl AccountControls {
    pub fn new(redis: ConnectionManager, sessions: Arc<SessionCache>, wallet: Wallet) -> Self {
        AccountControls {
            redis,
            sessions,
            wallet,
        }
    }

    /// Hands a committed change of `user_id`'s controls to every holder; returns once
    /// this node's holders have dropped the old values and the other nodes were told.
    pub async fn changed(&self, user_id: UserId, change: Change) -> Result<(), ControlsError> {
        let notice = match change {
            Change::EndSessions => Notice::User(user_id),
            Change::Controls => Notice::Controls(user_id),
            Change::Bonus => Notice::Bonus(user_id),
        };
        self.sessions.apply_notice(notice.clone());
        forget(&self.wallet, &notice)
            .await
            .map_err(|_| ControlsError::WalletStopped)?;
        match change {
            Change::EndSessions => session::revoke_all(&self.redis, user_id).await.map(|_| ()),
            Change::Controls => session::publish_controls(&self.redis, user_id).await,
            Change::Bonus => session::publish_bonus(&self.redis, user_id).await,
        }
        .map_err(ControlsError::Propagation)
    }
}

/// What the wallet shards drop for a notice: a user's controls, or a user's bonus state,
/// or (a lost channel) everything of every account.
async fn forget(wallet: &Wallet, notice: &Notice) -> Result<(), crate::wallet::WalletError> {
    match notice {
        Notice::Token(_) => Ok(()),
        Notice::User(u) | Notice::Controls(u) => wallet.forget_controls(Some(*u)).await,
        Notice::Bonus(u) => wallet.forget_bonus(Some(*u)).await,
        Notice::All => {
            wallet.forget_controls(None).await?;
            wallet.forget_bonus(None).await
        }
    }
}

/// Hands every notice of the channel to this node's wallet shards: a user's notice makes
/// their shard forget the user's controls (or bonus state); a lost channel (or a listener
/// that fell behind) makes every shard forget every account's.
pub fn spawn_wallet_listener(
    sessions: &SessionCache,
    wallet: Wallet,
    bonus_notices: prometheus::IntCounter,
) {
    let mut notices = sessions.notices();
    actix::spawn(async move {
        loop {
            let notice = match notices.recv().await {
                Ok(n) => n,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "control notices missed; every shard reloads");
                    Notice::All
                }
                Err(RecvError::Closed) => return,
            };
            if forget(&wallet, &notice).await.is_err() {
                return;
            }
            if matches!(notice, Notice::Bonus(_)) {
                bonus_notices.inc();
            }
        }
    });
}
