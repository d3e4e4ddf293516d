//! Bonus money and free bets (issue 17; docs/accounts.md, "Bonuses and free bets"): a
//! trader's grants, the bettor's list, and the expiry round of the maintenance timer.
//! Balances move only through the wallet shard that owns the user; settlement handles the
//! bets (`wallet::credits`).
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use uuid::Uuid;

use crate::accounts::controls::{AccountControls, Change};
use crate::db::audit::Actor as AuditActor;
use crate::db::bonus::{self as bdb, BonusRow, FreeBetRow, NewFreeBet};
use crate::domain::currency::{Currency, Rounding};
use crate::domain::ids::UserId;
use crate::domain::money::Money;
use crate::wallet::bonus::{GrantBonus, GrantRefusal};
use crate::wallet::Wallet;

/// `[bonus]`: bounds of grants, the cap of a conversion, the expiry round.
#[derive(Debug, Clone, Deserialize)]
pub struct BonusSettings {
    /// Largest bonus or free-bet stake one grant may give, in the base currency (converted,
    /// down, to the account's).
    pub grant_amount_max: Decimal,
    pub wagering_multiplier_max: i32,
    /// A met requirement moves at most this much bonus money to cash; the rest is retracted.
    /// In the base currency; a grant keeps it converted (down) to the account's.
    pub conversion_max: Decimal,
    /// The maintenance timer expires due bonuses and free bets this often.
    pub expiry_interval_ms: u64,
    /// Bonuses (and free bets) expired per round at most.
    pub expiry_batch_max: i64,
    /// Rows of each kind `GET /me/bonuses` lists at most.
    pub list_max: i64,
}

/// Why a grant or a read failed.
#[derive(Debug, thiserror::Error)]
pub enum BonusError {
    #[error("{0}")]
    Invalid(String),
    /// The user has an active bonus: one at a time.
    #[error("the user already has an active bonus")]
    ActiveBonus(Uuid),
    #[error("this idempotency key was used for a different grant")]
    KeyReused,
    #[error("no such user")]
    UnknownUser,
    #[error("database: {0}")]
    Db(String),
    /// Recorded, but not every node's wallet could be told (retry: a grant's key answers
    /// the first grant again and tells them again).
    #[error("the change is recorded, but could not reach every node")]
    Controls(crate::accounts::controls::ControlsError),
}

impl From<tokio_postgres::Error> for BonusError {
    fn from(e: tokio_postgres::Error) -> Self {
        BonusError::Db(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for BonusError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        BonusError::Db(e.to_string())
    }
}

/// A grant as the trader asks it (bonus or free bet).
#[derive(Debug, Clone)]
pub struct Grant {
    pub amount: Decimal,
    pub wagering_multiplier: i32,
    pub min_odds: Decimal,
    pub expires_at: DateTime<Utc>,
    pub idempotency_key: String,
}

/// The handles bonuses need.
#[derive(Clone)]
pub struct BonusService {
    pub wallet: Wallet,
    pub db: deadpool_postgres::Pool,
    pub settings: BonusSettings,
    /// Every grant and expiry reaches the wallet shards of every node (`Change::Bonus`):
    /// a bonus granted through one node is seen by the bet path of another.
    pub controls: AccountControls,
    /// A grant's amount is money of the user's currency (at most its scale's places).
    pub currencies: std::sync::Arc<crate::domain::currency::Currencies>,
}

impl BonusService {
    fn check(&self, g: &Grant, multiplier: bool) -> Result<(), BonusError> {
        let s = &self.settings;
        let key = g.idempotency_key.as_str();
        if key.is_empty() || key.len() > 100 || key.chars().any(char::is_control) {
            return Err(BonusError::Invalid(
                "idempotency_key must be 1 to 100 printable characters".into(),
            ));
        }
        if g.amount <= Decimal::ZERO || g.amount.scale() > 2 {
            return Err(BonusError::Invalid(
                "amount must be more than 0 with at most 2 places".into(),
            ));
        }
        if multiplier && !(0..=s.wagering_multiplier_max).contains(&g.wagering_multiplier) {
            return Err(BonusError::Invalid(format!(
                "wagering_multiplier must be 0 to {}",
                s.wagering_multiplier_max
            )));
        }
        if g.min_odds < Decimal::ONE || g.min_odds > Decimal::from(1000) || g.min_odds.scale() > 4 {
            return Err(BonusError::Invalid(
                "min_odds must be decimal odds from 1 to 1000".into(),
            ));
        }
        if g.expires_at <= Utc::now() {
            return Err(BonusError::Invalid(
                "expires_at must be in the future".into(),
            ));
        }
        Ok(())
    }

    /// Grants a bonus (201 when new; the same key and payload answers the first grant).
    pub async fn grant_bonus(
        &self,
        user_id: UserId,
        g: Grant,
        actor: AuditActor,
    ) -> Result<(BonusRow, bool), BonusError> {
        self.check(&g, true)?;
        let currency = self.account_currency(user_id, g.amount).await?;
        // The cap on what a met requirement moves to cash, in the account's currency.
        let conversion_cap = currency.from_base(self.settings.conversion_max, Rounding::Down);
        let money = |what: &str, d: Decimal| {
            Money::from_decimal(d).map_err(|e| BonusError::Invalid(format!("{what}: {e}")))
        };
        let (amount, conversion_cap) = (
            money("amount", g.amount)?,
            money("conversion_max", conversion_cap)?,
        );
        let out = self
            .wallet
            .grant_bonus(
                |reply| GrantBonus {
                    user_id,
                    amount,
                    wagering_multiplier: g.wagering_multiplier,
                    min_odds: g.min_odds,
                    expires_at: g.expires_at,
                    idempotency_key: g.idempotency_key.clone(),
                    conversion_cap,
                    actor,
                    reply,
                },
                user_id,
            )
            .await;
        let granted = out.map_err(|e| match e {
            GrantRefusal::ActiveBonus(id) => BonusError::ActiveBonus(id),
            GrantRefusal::KeyReused => BonusError::KeyReused,
            GrantRefusal::UnknownUser => BonusError::UnknownUser,
            GrantRefusal::Db(e) => BonusError::Db(format!("{e:#}")),
        })?;
        // A replay tells them again: a first answer lost to a 503 below is retried so.
        self.tell_every_node(user_id).await?;
        Ok(granted)
    }

    /// Every node's wallet shards read `user_id`'s bonus state again before their next bet.
    async fn tell_every_node(&self, user_id: UserId) -> Result<(), BonusError> {
        self.controls
            .changed(user_id, Change::Bonus)
            .await
            .map_err(BonusError::Controls)
    }

    /// The user's currency, once `amount` is money of it: no more places than its scale
    /// allows (JPY: none) and at most `[bonus] grant_amount_max`, which is in the base
    /// currency and converted (down) to the account's.
    async fn account_currency(
        &self,
        user_id: UserId,
        amount: Decimal,
    ) -> Result<Currency, BonusError> {
        let client = self.db.get().await?;
        let Some(account) = crate::db::users::restriction(&client, user_id).await? else {
            return Err(BonusError::UnknownUser);
        };
        let code = &account.currency_code;
        let currency = self.currencies.of(code);
        let money = crate::domain::Money::from_decimal(amount)
            .map_err(|e| BonusError::Invalid(format!("amount: {e}")))?;
        crate::domain::currency::check_scale(money, currency.scale).map_err(|e| {
            BonusError::Invalid(format!("amount: {e} (the account's currency is {code})"))
        })?;
        let max = currency.from_base(self.settings.grant_amount_max, Rounding::Down);
        if amount > max {
            return Err(BonusError::Invalid(format!(
                "amount must be at most {max} {code} ([bonus] grant_amount_max {} {} converted)",
                self.settings.grant_amount_max,
                self.currencies.base()
            )));
        }
        Ok(currency)
    }

    /// Grants a free bet (no money moves until it wins).
    pub async fn grant_free_bet(
        &self,
        user_id: UserId,
        g: Grant,
        actor: AuditActor,
    ) -> Result<(FreeBetRow, bool), BonusError> {
        self.check(&g, false)?;
        self.account_currency(user_id, g.amount).await?;
        let mut client = self.db.get().await?;
        let tx = client.transaction().await?;
        crate::db::audit::set_actor(&tx, actor).await?;
        if crate::db::users::restriction(&tx, user_id).await?.is_none() {
            return Err(BonusError::UnknownUser);
        }
        let (row, new) = bdb::insert_free_bet(
            &tx,
            &NewFreeBet {
                user_id,
                stake: g.amount,
                min_odds: g.min_odds,
                expires_at: g.expires_at,
                idempotency_key: &g.idempotency_key,
                granted_by: actor.user_id,
            },
        )
        .await?;
        if !new
            && (row.stake != g.amount
                || row.min_odds != g.min_odds
                || row.expires_at.timestamp_micros() != g.expires_at.timestamp_micros())
        {
            return Err(BonusError::KeyReused);
        }
        tx.commit().await?;
        self.tell_every_node(user_id).await?;
        Ok((row, new))
    }

    /// The bettor's bonuses and free bets.
    pub async fn list(
        &self,
        user_id: UserId,
    ) -> Result<(Vec<BonusRow>, Vec<FreeBetRow>), BonusError> {
        let client = self.db.get().await?;
        Ok(bdb::list_for_user(&client, user_id, self.settings.list_max).await?)
    }

    /// One expiry round: due bonuses retracted through their shards, due free bets marked
    /// expired. Answers (bonuses expired, free bets expired).
    pub async fn expire_due(&self) -> Result<(usize, u64), BonusError> {
        let client = self.db.get().await?;
        let due = bdb::due_bonuses(&client, self.settings.expiry_batch_max).await?;
        let mut expired = 0;
        for (bonus_id, user_id) in due {
            match self.wallet.expire_bonus(user_id, bonus_id).await {
                Ok(Some(_)) => {
                    expired += 1;
                    if let Err(e) = self.tell_every_node(user_id).await {
                        tracing::warn!(%bonus_id, error = %e, "bonus expiry not told to every node");
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(%bonus_id, error = %e, "bonus expiry failed"),
            }
        }
        let free = bdb::expire_free_bets(&client, self.settings.expiry_batch_max).await?;
        Ok((expired, free))
    }
}
