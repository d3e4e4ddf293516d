//! A trader's actions on one market: move its prices, suspend, resume or close it, change
//! its settings (limits, bet delay, the hold on settlement by the feed). Each runs in the
//! market actor's turn, and answers once the change is durable.
use std::sync::Arc;

use thiserror::Error;

use crate::actors::errors::MarketError;
use crate::actors::market::{ApplyCommand, MarketView, SetPrices, UpdateSettings};
use crate::actors::writer::{durable, NotDurable};
use crate::actors::{AskError, AuditActor, LoadError, Registry};
use crate::domain::ids::{MarketId, SelectionId};
use crate::domain::limits::MarketLimitsOverride;
use crate::domain::{MarketCommand, Odds};

mod create;
pub use create::NewMarketSpec;

/// The handles the use cases need.
#[derive(Clone)]
pub struct MarketService {
    pub registry: Arc<Registry>,
    pub db: deadpool_postgres::Pool,
}

/// Why a market action was refused or could not be completed.
#[derive(Debug, Error)]
pub enum MarketsError {
    /// No such market, or it is settled or voided (no live state any more).
    #[error("no such live market")]
    NotFound,
    /// The market's rules refused it (transition, margin floor, unknown selection...).
    #[error(transparent)]
    Refused(#[from] MarketError),
    #[error("live state did not answer: {0:?}")]
    Ask(AskError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    NotDurable(#[from] NotDurable),
    #[error("{0}")]
    Db(String),
    /// The request itself is invalid (counts, prices out of range).
    #[error("{0}")]
    Invalid(String),
    /// No such event with live state (market creation).
    #[error("no such live event")]
    EventNotFound,
    /// A write the database refused (duplicate, unknown reference, check).
    #[error("{0:#}")]
    Write(anyhow::Error),
}

impl From<AskError> for MarketsError {
    fn from(e: AskError) -> Self {
        MarketsError::Ask(e)
    }
}

crate::db_error_from!(MarketsError);

impl From<anyhow::Error> for MarketsError {
    fn from(e: anyhow::Error) -> Self {
        MarketsError::Db(format!("{e:#}"))
    }
}

/// A market after its settings changed, with the feed-settlement hold.
pub struct SettingsChanged {
    pub market: MarketView,
    pub feed_settlement_held: bool,
}

impl MarketService {
    async fn addr(
        &self,
        market_id: MarketId,
    ) -> Result<actix::Addr<crate::actors::market::MarketActor>, MarketsError> {
        self.registry
            .market(market_id)
            .await?
            .ok_or(MarketsError::NotFound)
    }

    /// New prices for some of the market's selections.
    pub async fn set_prices(
        &self,
        market_id: MarketId,
        prices: Vec<(SelectionId, Odds)>,
        actor: AuditActor,
    ) -> Result<MarketView, MarketsError> {
        let reg = &self.registry;
        let addr = self.addr(market_id).await?;
        let (view, d) = reg
            .ask(&addr, |reply| SetPrices {
                prices,
                actor,
                reply,
            })
            .await??;
        durable(d, reg.ask_timeout()).await?;
        Ok(view)
    }

    /// Suspend, resume or close the market.
    pub async fn command(
        &self,
        market_id: MarketId,
        command: MarketCommand,
        actor: AuditActor,
    ) -> Result<MarketView, MarketsError> {
        let reg = &self.registry;
        let addr = self.addr(market_id).await?;
        let out = reg
            .ask(&addr, |reply| ApplyCommand {
                command,
                actor,
                skip_if_invalid: false,
                reply,
            })
            .await??;
        // Not skipped: `skip_if_invalid` is false, so a refusal came back as an error.
        let (view, d) = out.ok_or(MarketsError::NotFound)?;
        durable(d, reg.ask_timeout()).await?;
        Ok(view)
    }

    /// Changes limits and bet delay (`patch`) and, when given, the hold on settlement by
    /// the feed (audited with the trader).
    pub async fn settings(
        &self,
        market_id: MarketId,
        patch: MarketLimitsOverride,
        hold_feed_settlement: Option<bool>,
        actor: AuditActor,
    ) -> Result<SettingsChanged, MarketsError> {
        let reg = &self.registry;
        let addr = self.addr(market_id).await?;
        if let Some(held) = hold_feed_settlement {
            let mut client = self.db.get().await?;
            let tx = client.transaction().await?;
            crate::db::markets::set_audit_context(&*tx, &actor).await?;
            crate::db::feed::set_settlement_held(&tx, market_id, held).await?;
            tx.commit().await?;
        }
        let (market, d) = reg
            .ask(&addr, |reply| UpdateSettings {
                patch,
                actor,
                reply,
            })
            .await??;
        durable(d, reg.ask_timeout()).await?;
        let client = self.db.get().await?;
        let feed_settlement_held = crate::db::feed::settlement_held(&client, market_id).await?;
        Ok(SettingsChanged {
            market,
            feed_settlement_held,
        })
    }
}
