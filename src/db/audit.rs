//! SQL of the audit trail and the security-event log: the transaction-local actor
//! settings read by the audit triggers (V6), `system_events` inserts, and the audit reader.
use std::net::IpAddr;

use crate::domain::ids::UserId;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// Who is writing, recorded by the audit triggers in `audit_log.user_id` / `ip_address`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Actor {
    pub user_id: Option<UserId>,
    pub ip: Option<IpAddr>,
}

/// The statement that tells the audit triggers who acts in this transaction: `$1` the
/// user id, `$2` the client address, as text ('' when unknown). Every writer uses it.
pub const SET_ACTOR_SQL: &str =
    "SELECT set_config('winzo.actor_id', $1, true), set_config('winzo.client_ip', $2, true)";

/// Sets `winzo.actor_id` and `winzo.client_ip` for the rest of the current transaction
/// (`set_config(.., true)` is `SET LOCAL`). Call it first in every writing transaction.
pub async fn set_actor<C: GenericClient>(
    tx: &C,
    actor: Actor,
) -> Result<(), tokio_postgres::Error> {
    let user = actor.user_id.map(|u| u.to_string()).unwrap_or_default();
    let ip = actor.ip.map(|ip| ip.to_string()).unwrap_or_default();
    tx.execute(SET_ACTOR_SQL, &[&user, &ip]).await?;
    Ok(())
}

/// One `system_events` row (failed logins, authorization failures, ...).
pub struct SecurityEvent<'a> {
    pub event_type: &'a str,
    /// `debug`, `info`, `warning`, `error` or `critical`.
    pub severity: &'a str,
    pub message: &'a str,
    pub details: Value,
    pub user_id: Option<UserId>,
    pub ip: Option<IpAddr>,
}

pub async fn insert_system_event<C: GenericClient>(
    client: &C,
    event: &SecurityEvent<'_>,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO system_events (event_type, severity, message, details, user_id, ip_address)
             VALUES ($1, $2::text::event_severity, $3, $4, $5, $6)",
            &[
                &event.event_type,
                &event.severity,
                &event.message,
                &event.details,
                &event.user_id,
                &event.ip,
            ],
        )
        .await?;
    Ok(())
}

/// Filters of `GET /trading/audit`; `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub table: Option<String>,
    pub record_id: Option<Uuid>,
    pub user_id: Option<UserId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// `Some(true)`: only changes made by a person (a trader, a bettor, support); `Some(false)`:
    /// only the engine's own (feeds, settlement workers); `None`: both.
    pub by_person: Option<bool>,
    pub limit: i64,
    pub offset: i64,
}

/// An `audit_log` row as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub table_name: String,
    pub record_id: Uuid,
    /// `INSERT`, `UPDATE` or `DELETE`.
    pub action: String,
    pub old_values: Option<Value>,
    pub new_values: Option<Value>,
    /// The acting user, when known.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub user_id: Option<UserId>,
    /// That user's username (null for the engine's own changes).
    pub username: Option<String>,
    pub ip_address: Option<String>,
    pub timestamp: DateTime<Utc>,
}

/// Audit rows matching `filter`, newest first.
pub async fn list_audit<C: GenericClient>(
    client: &C,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT a.id, a.table_name, a.record_id, a.action::text, a.old_values, a.new_values,
                    a.user_id, host(a.ip_address), a.timestamp, u.username
             FROM audit_log a LEFT JOIN users u ON u.id = a.user_id
             WHERE ($1::text IS NULL OR a.table_name = $1)
               AND ($2::uuid IS NULL OR a.record_id = $2)
               AND ($3::uuid IS NULL OR a.user_id = $3)
               AND ($4::timestamptz IS NULL OR a.timestamp >= $4)
               AND ($5::timestamptz IS NULL OR a.timestamp < $5)
               AND ($8::bool IS NULL OR (a.user_id IS NOT NULL) = $8)
             ORDER BY a.timestamp DESC, a.id DESC
             LIMIT $6 OFFSET $7",
            &[
                &filter.table,
                &filter.record_id,
                &filter.user_id,
                &filter.from,
                &filter.to,
                &filter.limit,
                &filter.offset,
                &filter.by_person,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AuditEntry {
            id: r.get(0),
            table_name: r.get(1),
            record_id: r.get(2),
            action: r.get(3),
            old_values: r.get(4),
            new_values: r.get(5),
            user_id: r.get(6),
            ip_address: r.get(7),
            timestamp: r.get(8),
            username: r.get(9),
        })
        .collect())
}

/// The audit-trail reader `GET /trading/audit` pages.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct AuditSettings {
    /// Largest page of `GET /trading/audit`.
    pub page_max: i64,
    /// Largest offset of `GET /trading/audit`.
    pub offset_max: i64,
}
