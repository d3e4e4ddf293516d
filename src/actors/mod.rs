//! Live state in actors: one [`event::EventActor`] per scheduled or live event, one
//! [`market::MarketActor`] per market, the [`registry::Registry`] that maps ids to them,
//! and the batching [`writer`] that makes every change durable.
//!
//! Shape (see docs/live-markets.md): handlers and feeds reach actors only through
//! [`registry::ask`] (bounded mailbox, `try_send`, reply channel, timeout); actors change
//! their memory only after taking a slot in the writer's queue, publish each change to the
//! topic hub, and hand back a `Durable` that resolves after the commit.
use std::sync::Arc;

use crate::broadcast::Hub;
use crate::config::MarketsSettings;

pub mod errors;
pub mod event;
pub mod market;
pub mod registry;
pub mod writer;

pub use errors::{LegRejection, MarketError};
pub use registry::{ask, AskError, Registry};
pub use writer::{AuditActor, Durable, WriterHandle};

/// What every live actor shares: settings, the topic hub, the writer.
pub struct Shared {
    pub markets: MarketsSettings,
    pub hub: Arc<Hub>,
    pub writer: WriterHandle,
}
