//! The state a subscriber gets first: an event's or a sport's live state, as JSON.
use serde_json::Value;

use super::protocol::Topic;
use crate::state::AppState;

/// Why a snapshot could not be built.
pub enum SnapshotError {
    /// No such event or sport (`unknown_topic`).
    Unknown,
    /// Postgres could not answer (`unavailable`).
    Unavailable,
}

pub async fn build(state: &AppState, topic: &Topic) -> Result<Value, SnapshotError> {
    let client = state.db.get().await.map_err(|e| {
        tracing::warn!(error = %e, "snapshot: no database connection");
        SnapshotError::Unavailable
    })?;
    let result = match topic {
        Topic::Event(id) => crate::db::snapshot::event(&client, *id).await,
        Topic::Sport(slug) => crate::db::snapshot::sport(&client, slug).await,
    };
    match result {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(SnapshotError::Unknown),
        Err(e) => {
            tracing::warn!(error = %e, "snapshot query failed");
            Err(SnapshotError::Unavailable)
        }
    }
}
