//! Creating the catalogue a trader builds markets on: sports, leagues, teams and events.
//! Each create is one audited transaction (the trader and their address recorded with the
//! row); a created event gets its live state (an event actor) once it is committed.
use std::sync::Arc;

use serde_json::Value;
use thiserror::Error;

use crate::actors::{AuditActor, Registry};
use crate::db::catalogue as cat;
use crate::db::markets as mq;

/// The handles catalogue creation needs.
#[derive(Clone)]
pub struct CatalogueService {
    pub db: deadpool_postgres::Pool,
    pub registry: Arc<Registry>,
}

/// Why a catalogue row was not created.
#[derive(Debug, Error)]
pub enum CatalogueError {
    /// The request breaks a catalogue rule the database cannot express (e.g. an event's
    /// teams must differ, exist and belong to its sport).
    #[error("{0}")]
    Invalid(&'static str),
    /// A write the database refused (duplicate, unknown reference, check).
    #[error("{0:#}")]
    Write(anyhow::Error),
    #[error("{0}")]
    Db(String),
}

crate::db_error_from!(CatalogueError);

impl From<anyhow::Error> for CatalogueError {
    fn from(e: anyhow::Error) -> Self {
        CatalogueError::Db(format!("{e:#}"))
    }
}

/// A catalogue row to create (the seed's columns).
pub enum NewRow<'a> {
    Sport(cat::NewSport<'a>),
    League(cat::NewLeague<'a>),
    Team(cat::NewTeam<'a>),
}

impl CatalogueService {
    /// Creates a sport, league or team in one transaction carrying the audit context;
    /// answers the stored row.
    pub async fn create(
        &self,
        actor: &AuditActor,
        new: &NewRow<'_>,
    ) -> Result<Value, CatalogueError> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        mq::set_audit_context(&*tx, actor).await?;
        let row = match new {
            NewRow::Sport(s) => cat::insert_sport(&*tx, s).await,
            NewRow::League(l) => cat::insert_league(&*tx, l).await,
            NewRow::Team(t) => cat::insert_team(&*tx, t).await,
        }
        .map_err(CatalogueError::Write)?;
        tx.commit().await?;
        Ok(row)
    }

    /// Creates an event and starts its live state; answers the stored row.
    pub async fn create_event(
        &self,
        actor: &AuditActor,
        new: &cat::NewEvent<'_>,
    ) -> Result<Value, CatalogueError> {
        if new.home_team_id == new.away_team_id {
            return Err(CatalogueError::Invalid("home and away teams must differ"));
        }
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        mq::set_audit_context(&*tx, actor).await?;
        let (id, row) = cat::insert_event(&*tx, new)
            .await
            .map_err(CatalogueError::Write)?
            .ok_or(CatalogueError::Invalid(
                "both teams must exist and belong to the sport",
            ))?;
        let event = mq::load_event(&*tx, id)
            .await?
            .ok_or_else(|| CatalogueError::Db("the created event vanished".into()))?;
        tx.commit().await?;
        self.registry.start_event(event);
        Ok(row)
    }
}
