//! `MarketActor`: the one writer of a market's live state: selections and their odds,
//! status, in-play flag, trading settings and liability per selection. Price changes,
//! suspensions and every bet leg's check-and-reserve are serialized through its mailbox.
//!
//! Every request carries a `oneshot` reply and is sent with `try_send` (see
//! [`super::Registry::ask`]), so a full mailbox answers 503 `busy` at once. A change of live
//! state takes a slot in the writer's queue first, then changes memory, publishes to the
//! event's and sport's topics, and answers with a [`Durable`] that resolves once the change
//! is committed.
use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio::sync::oneshot;

mod cashout;
pub mod feed;
mod legs;
mod trading;
mod views;

pub use cashout::{CashOutPrice, LegPrice};
pub use legs::{
    AddExposure, CheckAndReserve, ConfirmReservation, LegRequest, ReleaseExposure,
    ReleaseReservation, Reservation,
};
pub use trading::{ApplyCommand, GetLiability, GetMarket, SetInPlay, SetPrices, UpdateSettings};
pub use views::{LiabilityView, MarketView, SelectionLiability, SelectionView};

use super::errors::MarketError;
use super::registry::Directory;
use super::writer::Durable;
use super::Shared;
use crate::domain::ids::{EventId, MarketId, SelectionId};
use crate::domain::limits::MarketLimits;
use crate::domain::{MarketStatus, MarketType, Odds};

/// A selection's live state.
#[derive(Debug, Clone)]
pub struct SelectionState {
    pub id: SelectionId,
    pub name: String,
    pub odds: Odds,
    /// Confirmed bets: stake taken and potential payout.
    pub stake: Decimal,
    pub payout: Decimal,
    /// Reservations not yet confirmed or released (they count toward limits at once).
    pub reserved_stake: Decimal,
    pub reserved_payout: Decimal,
}

/// Everything a market actor starts from (recovery, on-demand start, creation).
pub struct MarketInit {
    pub id: MarketId,
    pub event_id: EventId,
    pub sport_slug: Arc<str>,
    pub event_start: DateTime<Utc>,
    pub market_type: MarketType,
    pub name: String,
    pub handicap: Option<Decimal>,
    pub total_points: Option<Decimal>,
    pub status: MarketStatus,
    pub in_play: bool,
    pub feed_suspended: bool,
    /// The sport's defaults overlaid with the market's own settings.
    pub limits: MarketLimits,
    pub selections: Vec<SelectionState>,
}

pub struct MarketActor {
    m: MarketInit,
    reservations: HashMap<u64, Reservation>,
    next_reservation: u64,
    shared: Arc<Shared>,
    directory: std::sync::Weak<Directory>,
    event_topic: crate::broadcast::TopicHandle,
    sport_topic: crate::broadcast::TopicHandle,
}

/// Reply channel of a state change: the new state and when it is durable.
pub type ChangeReply = oneshot::Sender<Result<(MarketView, Durable), MarketError>>;

impl Actor for MarketActor {
    type Context = Context<Self>;
}

impl MarketActor {
    pub fn new(m: MarketInit, shared: Arc<Shared>, directory: std::sync::Weak<Directory>) -> Self {
        let event_topic = shared
            .hub
            .handle(&crate::broadcast::event_topic(m.event_id));
        let sport_topic = shared
            .hub
            .handle(&crate::broadcast::sport_topic(&m.sport_slug));
        MarketActor {
            m,
            reservations: HashMap::new(),
            next_reservation: 1,
            shared,
            directory,
            event_topic,
            sport_topic,
        }
    }

    fn index_of(&self, selection_id: SelectionId) -> Result<usize, MarketError> {
        self.m
            .selections
            .iter()
            .position(|s| s.id == selection_id)
            .ok_or(MarketError::UnknownSelection(selection_id))
    }
}
