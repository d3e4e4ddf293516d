//! Outgoing messages to bettors (verification codes, review decisions) go through the
//! [`Notifier`] trait. The development notifier ([`OutboxNotifier`]) writes each message to
//! the `notifications` outbox table, from which a delivery worker would send it and stamp
//! `sent_at`. A message's payload may hold a code: it is never logged (`Debug` hides it).
use std::sync::Arc;

use deadpool_postgres::Pool;
use futures::future::BoxFuture;

use crate::db::kyc as kdb;
use crate::domain::ids::UserId;

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Phone,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Phone => "phone",
        }
    }
}

/// One outgoing message.
pub struct Notification {
    pub user_id: Option<UserId>,
    pub channel: Channel,
    /// The address or number.
    pub recipient: String,
    /// What the delivery worker renders, e.g. `verification_code`.
    pub template: &'static str,
    /// The template's values (a code travels here).
    pub payload: serde_json::Value,
}

impl std::fmt::Debug for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notification")
            .field("user_id", &self.user_id)
            .field("channel", &self.channel)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

/// Sends (or queues for sending) one message; answers once it is safely handed on.
pub trait Notifier: Send + Sync {
    fn notify(&self, message: Notification) -> BoxFuture<'_, anyhow::Result<()>>;
}

/// The development notifier: the `notifications` outbox table.
pub struct OutboxNotifier {
    pool: Pool,
}

impl OutboxNotifier {
    pub fn shared(pool: Pool) -> Arc<dyn Notifier> {
        Arc::new(OutboxNotifier { pool })
    }
}

impl Notifier for OutboxNotifier {
    fn notify(&self, m: Notification) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            kdb::insert_notification(
                &client,
                &kdb::NewNotification {
                    user_id: m.user_id,
                    channel: m.channel.as_str(),
                    recipient: &m.recipient,
                    template: m.template,
                    payload: &m.payload,
                },
            )
            .await?;
            Ok(())
        })
    }
}
