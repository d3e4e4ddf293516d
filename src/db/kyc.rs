//! SQL of verification (KYC): codes, the notifications outbox, documents and the review
//! queue on `user_profiles`.
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::Value;

use crate::domain::ids::UserId;

/// Where codes go, and what is verified already.
pub struct Contact {
    pub email: String,
    pub phone: Option<String>,
    pub email_verified: bool,
    pub phone_verified: bool,
}

pub async fn contact<C: GenericClient>(
    client: &C,
    user_id: UserId,
) -> Result<Option<Contact>, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "SELECT u.email, p.phone, coalesce(u.email_verified, false),
                    coalesce(u.phone_verified, false)
             FROM users u LEFT JOIN user_profiles p ON p.user_id = u.id
             WHERE u.id = $1",
        )
        .await?;
    Ok(client
        .query_opt(&stmt, &[&user_id])
        .await?
        .map(|r| Contact {
            email: r.get(0),
            phone: r.get(1),
            email_verified: r.get(2),
            phone_verified: r.get(3),
        }))
}

/// The live code of one channel (locked for the rest of the transaction).
pub struct CodeRow {
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
    pub attempts: i32,
    pub expires_at: DateTime<Utc>,
    pub sent_at: DateTime<Utc>,
}

pub async fn lock_code<C: GenericClient>(
    client: &C,
    user_id: UserId,
    channel: &str,
) -> Result<Option<CodeRow>, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "SELECT code_salt, code_hash, attempts, expires_at, sent_at
             FROM verification_codes WHERE user_id = $1 AND channel = $2 FOR UPDATE",
        )
        .await?;
    Ok(client
        .query_opt(&stmt, &[&user_id, &channel])
        .await?
        .map(|r| CodeRow {
            salt: r.get(0),
            hash: r.get(1),
            attempts: r.get(2),
            expires_at: r.get(3),
            sent_at: r.get(4),
        }))
}

/// Stores a new code in place of any earlier one of the channel.
pub async fn put_code<C: GenericClient>(
    client: &C,
    user_id: UserId,
    channel: &str,
    salt: &[u8],
    hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO verification_codes (user_id, channel, code_salt, code_hash, attempts,
                                             expires_at, sent_at)
             VALUES ($1, $2, $3, $4, 0, $5, now())
             ON CONFLICT (user_id, channel) DO UPDATE
               SET code_salt = EXCLUDED.code_salt, code_hash = EXCLUDED.code_hash,
                   attempts = 0, expires_at = EXCLUDED.expires_at, sent_at = now()",
        )
        .await?;
    client
        .execute(&stmt, &[&user_id, &channel, &salt, &hash, &expires_at])
        .await?;
    Ok(())
}

pub async fn count_attempt<C: GenericClient>(
    client: &C,
    user_id: UserId,
    channel: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE verification_codes SET attempts = attempts + 1
             WHERE user_id = $1 AND channel = $2",
            &[&user_id, &channel],
        )
        .await?;
    Ok(())
}

pub async fn delete_code<C: GenericClient>(
    client: &C,
    user_id: UserId,
    channel: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "DELETE FROM verification_codes WHERE user_id = $1 AND channel = $2",
            &[&user_id, &channel],
        )
        .await?;
    Ok(())
}

/// Sets `users.email_verified` or `users.phone_verified`.
pub async fn set_channel_verified<C: GenericClient>(
    client: &C,
    user_id: UserId,
    channel: &str,
) -> Result<(), tokio_postgres::Error> {
    let sql = match channel {
        "email" => "UPDATE users SET email_verified = true, updated_at = now() WHERE id = $1",
        _ => "UPDATE users SET phone_verified = true, updated_at = now() WHERE id = $1",
    };
    client.execute(sql, &[&user_id]).await?;
    Ok(())
}

/// One outbox row.
pub struct NewNotification<'a> {
    pub user_id: Option<UserId>,
    pub channel: &'a str,
    pub recipient: &'a str,
    pub template: &'a str,
    pub payload: &'a Value,
}

pub async fn insert_notification<C: GenericClient>(
    client: &C,
    n: &NewNotification<'_>,
) -> Result<(), tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO notifications (user_id, channel, recipient, template, payload)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    client
        .execute(
            &stmt,
            &[&n.user_id, &n.channel, &n.recipient, &n.template, n.payload],
        )
        .await?;
    Ok(())
}

/// A profile's verification, locked for the rest of the transaction.
pub struct ProfileVerification {
    pub status: String,
    pub documents: Value,
}

pub async fn lock_profile<C: GenericClient>(
    client: &C,
    user_id: UserId,
) -> Result<Option<ProfileVerification>, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(
            "SELECT verification_status::text, coalesce(verification_documents, '[]'::jsonb)
             FROM user_profiles WHERE user_id = $1 FOR UPDATE",
        )
        .await?;
    Ok(client
        .query_opt(&stmt, &[&user_id])
        .await?
        .map(|r| ProfileVerification {
            status: r.get(0),
            documents: r.get(1),
        }))
}

/// Records a submission: the documents, the new status, and the queue place (kept when the
/// profile was pending already, so more documents do not send it to the back).
pub async fn set_submission<C: GenericClient>(
    client: &C,
    user_id: UserId,
    status: &str,
    documents: &Value,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE user_profiles
             SET verification_documents = $3,
                 verification_submitted_at = CASE WHEN verification_status = 'pending'
                     THEN coalesce(verification_submitted_at, now()) ELSE now() END,
                 verification_status = $2::text::verification_status,
                 updated_at = now()
             WHERE user_id = $1",
            &[&user_id, &status, documents],
        )
        .await?;
    Ok(())
}

/// Records a review decision with its reviewer.
pub async fn set_decision<C: GenericClient>(
    client: &C,
    user_id: UserId,
    status: &str,
    reason: Option<&str>,
    reviewer: UserId,
    documents: &Value,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE user_profiles
             SET verification_status = $2::text::verification_status,
                 verification_reason = $3, verification_reviewed_by = $4,
                 verification_reviewed_at = now(), verification_documents = $5,
                 updated_at = now()
             WHERE user_id = $1",
            &[&user_id, &status, &reason, &reviewer, documents],
        )
        .await?;
    Ok(())
}

/// `GET /me/verification` and one entry of the support queue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerificationView {
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    pub username: String,
    pub email_verified: bool,
    pub phone_verified: bool,
    /// `unverified`, `pending`, `verified` or `rejected`.
    pub verification_status: String,
    /// `[{document_type, reference, submitted_at, decision?}]`, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub documents: Value,
    /// The reason of the last rejection.
    pub reason: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub reviewed_by: Option<UserId>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

const VIEW: &str = "
SELECT u.id, u.username, coalesce(u.email_verified, false), coalesce(u.phone_verified, false),
       p.verification_status::text, coalesce(p.verification_documents, '[]'::jsonb),
       p.verification_reason, p.verification_submitted_at, p.verification_reviewed_by,
       p.verification_reviewed_at
FROM users u JOIN user_profiles p ON p.user_id = u.id";

fn view(r: &tokio_postgres::Row) -> VerificationView {
    VerificationView {
        user_id: r.get(0),
        username: r.get(1),
        email_verified: r.get(2),
        phone_verified: r.get(3),
        verification_status: r.get(4),
        documents: r.get(5),
        reason: r.get(6),
        submitted_at: r.get(7),
        reviewed_by: r.get(8),
        reviewed_at: r.get(9),
    }
}

pub async fn get_view<C: GenericClient>(
    client: &C,
    user_id: UserId,
) -> Result<Option<VerificationView>, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(&format!("{VIEW} WHERE u.id = $1"))
        .await?;
    Ok(client
        .query_opt(&stmt, &[&user_id])
        .await?
        .as_ref()
        .map(view))
}

/// Profiles in `status`, oldest submission first.
pub async fn queue<C: GenericClient>(
    client: &C,
    status: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<VerificationView>, tokio_postgres::Error> {
    let stmt = client
        .prepare_cached(&format!(
            "{VIEW} WHERE p.verification_status = $1::text::verification_status
             ORDER BY p.verification_submitted_at NULLS LAST, p.user_id LIMIT $2 OFFSET $3"
        ))
        .await?;
    Ok(client
        .query(&stmt, &[&status, &limit, &offset])
        .await?
        .iter()
        .map(view)
        .collect())
}

/// Before the profile's phone changes to `phone`: a verified number that changes is no
/// longer verified, and a code sent to the old number stops working.
pub async fn phone_changing<C: GenericClient>(
    client: &C,
    user_id: UserId,
    phone: &str,
) -> Result<(), tokio_postgres::Error> {
    let changed = client
        .execute(
            "SELECT 1 FROM user_profiles
             WHERE user_id = $1 AND phone IS DISTINCT FROM $2",
            &[&user_id, &phone],
        )
        .await?;
    if changed > 0 {
        client
            .execute(
                "UPDATE users SET phone_verified = false, updated_at = now()
                 WHERE id = $1 AND phone_verified",
                &[&user_id],
            )
            .await?;
        delete_code(client, user_id, "phone").await?;
    }
    Ok(())
}
