//! Changes to an account's controls and details: the desk's change of status, stake factor,
//! maximum stake or role (inside the role boundaries); the bettor's own profile,
//! preferences (betting limits with their cooling-off) and self-exclusion. Each is one
//! audited transaction; a change that binds the next bet (limits, status, role,
//! self-exclusion) is handed to every holder of the account's controls before the answer.
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use thiserror::Error;

use crate::accounts::controls::{AccountControls, Change, ControlsError};
use crate::accounts::validate::{self, Invalid};
use crate::auth::Role;
use crate::db::audit::{self, Actor};
use crate::db::users::{self, PreferencesRow, Profile, ProfilePatch, TradingPatch, TradingUser};
use crate::domain::betting_limits::BettingLimits;
use crate::domain::currency::{check_scale, Currencies};
use crate::domain::ids::UserId;
use crate::domain::Money;

/// The handles account changes need.
#[derive(Clone)]
pub struct AccountService {
    pub db: deadpool_postgres::Pool,
    pub controls: AccountControls,
    /// An amount of an account (a stake cap, a maximum stake) is money of its currency.
    pub currencies: std::sync::Arc<Currencies>,
}

/// Why an account change was refused or could not be completed.
#[derive(Debug, Error)]
pub enum AccountError {
    /// No such account (or profile, or preferences row).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// A staff change outside the role boundaries (docs/accounts.md, "Who may change whom").
    #[error("{0}")]
    RoleBoundary(String),
    /// A longer self-exclusion is in force: it cannot be shortened.
    #[error("a longer self-exclusion is in force until {0}")]
    SelfExclusionActive(DateTime<Utc>),
    /// The account's currency is fixed at registration.
    #[error("the account's currency is {0}, fixed at registration")]
    CurrencyFixed(String),
    /// A rule of the account's data (e.g. under age).
    #[error("{}", .0.message)]
    Invalid(Invalid),
    /// The change is committed but did not reach every holder of the account's controls.
    #[error("the change is committed but not handed on: {0:?}")]
    NotHandedOn(ControlsError),
    #[error("{0}")]
    Db(String),
}

crate::db_error_from!(AccountError);

impl From<anyhow::Error> for AccountError {
    fn from(e: anyhow::Error) -> Self {
        AccountError::Db(format!("{e:#}"))
    }
}

/// A bettor's change of preferences, validated: absent fields stay as they are.
#[derive(Debug, Default)]
pub struct PreferencesPatch {
    /// `american`, `decimal` or `fractional`.
    pub odds_format: Option<String>,
    /// (`email` | `sms` | `push`, on).
    pub notifications: Vec<(&'static str, bool)>,
    /// Minutes, 5 to 1440.
    pub session_timeout: Option<u32>,
    pub reality_check: Option<bool>,
    /// New stake caps per period (`daily`, `weekly`, `monthly`).
    pub limits: Vec<(&'static str, Money)>,
}

/// The staff change's role boundaries: the target's role is below the actor's, a new role
/// too, and only admins change roles.
fn check_boundaries(actor: Role, target: &str, patch: &TradingPatch) -> Result<(), AccountError> {
    let target = Role::parse(target)
        .ok_or_else(|| AccountError::Db(format!("unknown role {target:?} in users")))?;
    if !actor.may_change(target) {
        return Err(AccountError::RoleBoundary(format!(
            "a {} may change only accounts below their own role; this one is a {}",
            actor.as_str(),
            target.as_str()
        )));
    }
    if let Some(new) = patch.role.as_deref().and_then(Role::parse) {
        if actor != Role::Admin || !actor.may_change(new) {
            return Err(AccountError::RoleBoundary(
                "only an admin changes roles, and only to a role below admin".into(),
            ));
        }
    }
    Ok(())
}

/// Sets `key` in a JSON object (made an object if it was not one).
fn set_key(target: &mut Value, key: &str, value: Value) {
    if !target.is_object() {
        *target = json!({});
    }
    if let Some(obj) = target.as_object_mut() {
        obj.insert(key.to_string(), value);
    }
}

/// Applies a validated patch to the row read under lock: a cut of a cap applies now, a
/// raise after the cooling-off.
fn apply_preferences(
    row: &mut PreferencesRow,
    patch: PreferencesPatch,
    now: DateTime<Utc>,
    cooling_off: chrono::Duration,
) {
    if let Some(f) = patch.odds_format {
        row.odds_format = f;
    }
    for (channel, on) in patch.notifications {
        set_key(&mut row.notifications, channel, json!(on));
    }
    if let Some(t) = patch.session_timeout {
        set_key(&mut row.responsible_gaming, "session_timeout", json!(t));
    }
    if let Some(on) = patch.reality_check {
        set_key(&mut row.responsible_gaming, "reality_check", json!(on));
    }
    let mut l = BettingLimits::from_stored(&row.betting_limits);
    l.promote_due(now);
    for (period, amount) in patch.limits {
        l.request(period, amount, now, cooling_off);
    }
    row.betting_limits = l.to_json();
}

impl AccountService {
    /// Each `(field, amount)` has no more places than the account's currency allows (a
    /// cap of 10.50 yen is refused, never rounded).
    async fn check_scales<C: deadpool_postgres::GenericClient>(
        &self,
        client: &C,
        user_id: UserId,
        amounts: &[(String, Money)],
    ) -> Result<(), AccountError> {
        if amounts.is_empty() {
            return Ok(());
        }
        let code = users::restriction(client, user_id)
            .await?
            .ok_or(AccountError::NotFound("user"))?
            .currency_code;
        let scale = self.currencies.scale_of(&code);
        for (field, amount) in amounts {
            check_scale(*amount, scale).map_err(|e| {
                AccountError::Invalid(Invalid {
                    code: "validation_failed",
                    message: format!("{field}: {e} (the account's currency is {code})"),
                    details: json!({"field": field, "reason": e.code()}),
                })
            })?;
        }
        Ok(())
    }

    async fn hand_on(&self, user_id: UserId, change: Change) -> Result<(), AccountError> {
        self.controls
            .changed(user_id, change)
            .await
            .map_err(AccountError::NotHandedOn)
    }

    /// A staff member (`staff_role`) changes an account's controls; answers the account as
    /// the desk shows it.
    pub async fn staff_change(
        &self,
        staff_role: Role,
        actor: Actor,
        user_id: UserId,
        patch: TradingPatch,
    ) -> Result<TradingUser, AccountError> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        audit::set_actor(&tx, actor).await?;
        let (_, role) = users::lock_for_staff_change(&tx, user_id)
            .await?
            .ok_or(AccountError::NotFound("user"))?;
        check_boundaries(staff_role, &role, &patch)?;
        if let Some(Some(max)) = patch.max_stake {
            let max = Money::from_decimal(max)
                .map_err(|e| AccountError::Db(format!("max_stake: {e}")))?;
            self.check_scales(&tx, user_id, &[("max_stake".into(), max)])
                .await?;
        }
        users::patch_trading_user(&tx, user_id, &patch).await?;
        tx.commit().await?;
        // Sessions carry the role and a suspended or banned account has none.
        let restricted = patch.status.is_some_and(|s| s.is_restricted());
        let change = if patch.role.is_some() || restricted {
            Change::EndSessions
        } else {
            Change::Controls
        };
        self.hand_on(user_id, change).await?;
        users::get_trading_user(&client, user_id)
            .await?
            .ok_or(AccountError::NotFound("user"))
    }

    /// The bettor changes their profile. The currency may be named only as it is.
    pub async fn update_profile(
        &self,
        actor: Actor,
        user_id: UserId,
        patch: &ProfilePatch,
    ) -> Result<Profile, AccountError> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        audit::set_actor(&tx, actor).await?;
        if let Some(asked) = &patch.currency_code {
            let currency = users::restriction(&tx, user_id)
                .await?
                .ok_or(AccountError::NotFound("profile"))?
                .currency_code;
            if *asked != currency {
                return Err(AccountError::CurrencyFixed(currency));
            }
        }
        if let Some(phone) = &patch.phone {
            crate::db::kyc::phone_changing(&tx, user_id, phone).await?;
        }
        let profile = users::update_profile(&tx, user_id, patch)
            .await
            .map_err(|e| {
                if users::is_under_age_violation(&e) {
                    AccountError::Invalid(validate::under_age())
                } else {
                    e.into()
                }
            })?
            .ok_or(AccountError::NotFound("profile"))?;
        tx.commit().await?;
        Ok(profile)
    }

    /// The bettor changes their preferences; a change of limits binds the very next bet,
    /// on every node.
    pub async fn update_preferences(
        &self,
        actor: Actor,
        user_id: UserId,
        patch: PreferencesPatch,
        now: DateTime<Utc>,
        cooling_off: chrono::Duration,
    ) -> Result<PreferencesRow, AccountError> {
        let limits_changed = !patch.limits.is_empty();
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        audit::set_actor(&tx, actor).await?;
        let mut row = users::get_preferences(&tx, user_id, true)
            .await?
            .ok_or(AccountError::NotFound("preferences"))?;
        let caps: Vec<(String, Money)> = patch
            .limits
            .iter()
            .map(|(period, amount)| (format!("betting_limits.{period}"), *amount))
            .collect();
        self.check_scales(&tx, user_id, &caps).await?;
        apply_preferences(&mut row, patch, now, cooling_off);
        row.updated_at = users::write_preferences(&tx, user_id, &row).await?;
        tx.commit().await?;
        if limits_changed {
            self.hand_on(user_id, Change::Controls).await?;
        }
        Ok(row)
    }

    /// The bettor excludes themselves until `until` (never shorter than one in force);
    /// every session ends. Answers the exclusion in force.
    pub async fn self_exclude(
        &self,
        actor: Actor,
        user_id: UserId,
        until: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, AccountError> {
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        audit::set_actor(&tx, actor).await?;
        let in_force = users::extend_self_exclusion(&tx, user_id, until)
            .await?
            .ok_or(AccountError::NotFound("user"))?;
        if in_force > until {
            tx.rollback().await?;
            return Err(AccountError::SelfExclusionActive(in_force));
        }
        tx.commit().await?;
        self.hand_on(user_id, Change::EndSessions).await?;
        Ok(in_force)
    }
}
