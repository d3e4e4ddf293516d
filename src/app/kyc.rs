//! Verification (KYC) use cases: email and phone codes through the notifier, document
//! submission, the support queue and its decisions. Every change of `verification_status`
//! goes through `domain::verification::transition`; a decision is audited with its
//! reviewer (the `user_profiles` trigger), notified, and handed to every holder of the
//! account's controls at once (the bet path's wallet shard reads it again).
use std::sync::Arc;

use chrono::{Duration, Utc};
use deadpool_postgres::Pool;
use serde_json::json;
use thiserror::Error;

use crate::accounts::controls::{AccountControls, Change, ControlsError};
use crate::accounts::validate::{self, Invalid};
use crate::db::audit::{self, Actor};
use crate::db::kyc::{self as kdb, VerificationView};
use crate::domain::ids::UserId;
use crate::domain::verification::{
    is_code_shaped, transition, DocumentType, InvalidVerificationTransition, VerificationCommand,
    VerificationStatus,
};
use crate::kyc::codes;
use crate::kyc::notifier::{Channel, Notification, Notifier};
use crate::kyc::KycSettings;

/// The handles the verification use cases need.
#[derive(Clone)]
pub struct KycService {
    pub db: Pool,
    pub notifier: Arc<dyn Notifier>,
    pub controls: AccountControls,
    pub settings: KycSettings,
}

/// Why a verification action was refused or could not be completed.
#[derive(Debug, Error)]
pub enum KycError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// No live code, an expired one, or the wrong digits.
    #[error("the code is wrong or has expired")]
    InvalidCode,
    /// The live code was tried too often: a new one must be asked for.
    #[error("too many wrong codes; ask for a new one")]
    TooManyAttempts { retry_after_s: u64 },
    /// A code of this channel was sent too recently.
    #[error("a code was sent moments ago; wait before asking again")]
    ResendThrottled { retry_after_s: u64 },
    /// The profile has no phone number to send a code to.
    #[error("the profile has no phone number")]
    NoPhone,
    #[error("this {0} is verified already")]
    AlreadyVerified(&'static str),
    #[error(transparent)]
    Transition(#[from] InvalidVerificationTransition),
    #[error("no such account")]
    NotFound,
    /// The message could not be handed to the notifier.
    #[error("the message could not be sent")]
    Notify(String),
    #[error("the change is recorded, but could not reach every node")]
    Controls(ControlsError),
    #[error("{0}")]
    Db(String),
}

crate::db_error_from!(KycError);

/// A document submission.
pub struct Submission {
    pub document_type: String,
    pub reference: String,
}

/// A review decision.
pub struct Decision {
    pub decision: String,
    pub reason: Option<String>,
}

impl KycService {
    /// Sends a fresh code for `channel`; the earlier one (if any) stops working.
    pub async fn send_code(&self, user_id: UserId, channel: Channel) -> Result<(), KycError> {
        let mut client = self.db.get().await?;
        let contact = kdb::contact(&client, user_id)
            .await?
            .ok_or(KycError::NotFound)?;
        let (recipient, verified) = match channel {
            Channel::Email => (Some(contact.email), contact.email_verified),
            Channel::Phone => (contact.phone, contact.phone_verified),
        };
        if verified {
            return Err(KycError::AlreadyVerified(channel.as_str()));
        }
        let recipient = recipient.ok_or(KycError::NoPhone)?;
        let tx = client.transaction().await?;
        let now = Utc::now();
        if let Some(live) = kdb::lock_code(&tx, user_id, channel.as_str()).await? {
            let next = live.sent_at + secs(self.settings.code_resend_interval_s);
            if next > now {
                return Err(KycError::ResendThrottled {
                    retry_after_s: seconds_until(next, now),
                });
            }
        }
        let code = codes::generate(user_id, channel.as_str());
        let expires_at = now + secs(self.settings.code_ttl_s);
        kdb::put_code(
            &tx,
            user_id,
            channel.as_str(),
            &code.salt,
            &code.hash,
            expires_at,
        )
        .await?;
        // The message is handed on before the code is committed: a code nobody received
        // never throttles the next request.
        self.notifier
            .notify(Notification {
                user_id: Some(user_id),
                channel,
                recipient,
                template: "verification_code",
                payload: json!({"code": code.code, "expires_at": expires_at}),
            })
            .await
            .map_err(|e| KycError::Notify(format!("{e:#}")))?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks `code` against the channel's live code; a match marks the channel verified.
    pub async fn confirm_code(
        &self,
        user_id: UserId,
        channel: Channel,
        code: &str,
        actor: Actor,
    ) -> Result<(), KycError> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        audit::set_actor(&tx, actor).await?;
        let now = Utc::now();
        let Some(live) = kdb::lock_code(&tx, user_id, channel.as_str()).await? else {
            return Err(KycError::InvalidCode);
        };
        if live.attempts >= self.settings.code_attempts_max {
            let next = live.sent_at + secs(self.settings.code_resend_interval_s);
            return Err(KycError::TooManyAttempts {
                retry_after_s: seconds_until(next, now).max(1),
            });
        }
        if live.expires_at <= now {
            return Err(KycError::InvalidCode);
        }
        let right = is_code_shaped(code)
            && codes::matches(&live.salt, &live.hash, user_id, channel.as_str(), code);
        if !right {
            kdb::count_attempt(&tx, user_id, channel.as_str()).await?;
            tx.commit().await?;
            return Err(KycError::InvalidCode);
        }
        kdb::delete_code(&tx, user_id, channel.as_str()).await?;
        kdb::set_channel_verified(&tx, user_id, channel.as_str()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds a document to the profile and puts it in the review queue.
    pub async fn submit(
        &self,
        user_id: UserId,
        s: Submission,
        actor: Actor,
    ) -> Result<VerificationView, KycError> {
        let kind: DocumentType = s.document_type.parse().map_err(|_| {
            validate::invalid(
                "document_type",
                "must be passport, id_card, driving_licence or proof_of_address",
            )
        })?;
        let n = s.reference.chars().count();
        if n == 0
            || n > self.settings.reference_chars_max
            || s.reference.chars().any(char::is_control)
        {
            return Err(validate::invalid(
                "reference",
                &format!(
                    "must be 1 to {} printable characters",
                    self.settings.reference_chars_max
                ),
            )
            .into());
        }
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        audit::set_actor(&tx, actor).await?;
        let profile = kdb::lock_profile(&tx, user_id)
            .await?
            .ok_or(KycError::NotFound)?;
        let to = transition(status(&profile.status)?, VerificationCommand::Submit)?;
        let mut documents = profile.documents.as_array().cloned().unwrap_or_default();
        if documents.len() >= self.settings.documents_per_profile_max {
            return Err(validate::invalid(
                "reference",
                &format!(
                    "a profile holds at most {} documents",
                    self.settings.documents_per_profile_max
                ),
            )
            .into());
        }
        documents.push(json!({"document_type": kind, "reference": s.reference,
                              "submitted_at": Utc::now()}));
        kdb::set_submission(&tx, user_id, to.as_str(), &json!(documents)).await?;
        tx.commit().await?;
        self.view(user_id).await
    }

    /// The account's verification as the bettor sees it.
    pub async fn view(&self, user_id: UserId) -> Result<VerificationView, KycError> {
        let client = self.db.get().await?;
        kdb::get_view(&client, user_id)
            .await?
            .ok_or(KycError::NotFound)
    }

    /// Profiles in `status` (default `pending`), oldest submission first.
    pub async fn queue(
        &self,
        status_filter: Option<&str>,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Vec<VerificationView>, KycError> {
        let wanted = match status_filter {
            None => VerificationStatus::Pending,
            Some(s) => s.parse().map_err(|_| {
                validate::invalid(
                    "status",
                    "must be unverified, pending, verified or rejected",
                )
            })?,
        };
        let max = self.settings.queue_page_max;
        let limit = limit.unwrap_or(50.min(max));
        let offset = offset.unwrap_or(0);
        if !(1..=max).contains(&limit) || !(0..=100_000).contains(&offset) {
            return Err(validate::invalid(
                "limit",
                &format!("limit must be 1 to {max}, offset 0 to 100000"),
            )
            .into());
        }
        let client = self.db.get().await?;
        Ok(kdb::queue(&client, wanted.as_str(), limit, offset).await?)
    }

    /// A reviewer decides a pending profile: audited with the reviewer, notified to the
    /// bettor, and binding the account's next action at once.
    pub async fn decide(
        &self,
        user_id: UserId,
        d: Decision,
        reviewer: Actor,
    ) -> Result<VerificationView, KycError> {
        let command = match d.decision.as_str() {
            "verified" => VerificationCommand::Verify,
            "rejected" => VerificationCommand::Reject,
            _ => return Err(validate::invalid("decision", "must be verified or rejected").into()),
        };
        let reason = d.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
        if command == VerificationCommand::Reject && reason.is_none() {
            return Err(validate::invalid("reason", "a rejection needs a reason").into());
        }
        if reason.is_some_and(|r| {
            r.chars().count() > self.settings.reason_chars_max || r.chars().any(char::is_control)
        }) {
            return Err(validate::invalid(
                "reason",
                &format!(
                    "at most {} printable characters",
                    self.settings.reason_chars_max
                ),
            )
            .into());
        }
        let reviewer_id = reviewer.user_id.ok_or(KycError::NotFound)?;
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        audit::set_actor(&tx, reviewer).await?;
        let profile = kdb::lock_profile(&tx, user_id)
            .await?
            .ok_or(KycError::NotFound)?;
        let to = transition(status(&profile.status)?, command)?;
        let documents = decided(profile.documents, to);
        kdb::set_decision(&tx, user_id, to.as_str(), reason, reviewer_id, &documents).await?;
        let contact = kdb::contact(&tx, user_id)
            .await?
            .ok_or(KycError::NotFound)?;
        tx.commit().await?;
        self.controls
            .changed(user_id, Change::Controls)
            .await
            .map_err(KycError::Controls)?;
        let template = match to {
            VerificationStatus::Verified => "verification_verified",
            _ => "verification_rejected",
        };
        // The decision stands whether or not its message could be queued.
        if let Err(e) = self
            .notifier
            .notify(Notification {
                user_id: Some(user_id),
                channel: Channel::Email,
                recipient: contact.email,
                template,
                payload: json!({"verification_status": to, "reason": reason}),
            })
            .await
        {
            tracing::warn!(user = %user_id, error = %format!("{e:#}"), "verification decision not notified");
        }
        self.view(user_id).await
    }
}

fn status(s: &str) -> Result<VerificationStatus, KycError> {
    s.parse()
        .map_err(|e| KycError::Db(format!("user_profiles.verification_status: {e}")))
}

/// The documents with the decision on every one not decided yet.
fn decided(documents: serde_json::Value, to: VerificationStatus) -> serde_json::Value {
    let mut docs = documents.as_array().cloned().unwrap_or_default();
    for d in docs.iter_mut() {
        if let Some(o) = d.as_object_mut() {
            o.entry("decision").or_insert(json!(to));
        }
    }
    json!(docs)
}

fn secs(s: u64) -> Duration {
    Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000))
}

fn seconds_until(t: chrono::DateTime<Utc>, now: chrono::DateTime<Utc>) -> u64 {
    u64::try_from((t - now).num_seconds() + 1).unwrap_or(1)
}
