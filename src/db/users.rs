//! SQL of accounts: users with their profile, preferences and balance rows, logins,
//! self-exclusion and the trading desk's per-user controls.
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Row;

use crate::domain::account::UserStatus;
use crate::domain::ids::UserId;

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserRow {
    #[schema(value_type = uuid::Uuid)]
    pub id: UserId,
    pub username: String,
    pub email: String,
    /// `user`, `support`, `moderator` or `admin`.
    pub role: String,
    #[schema(value_type = String, example = "active")]
    pub status: UserStatus,
    pub email_verified: bool,
    pub self_excluded_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

const USER_COLUMNS: &str = "id, username, email, role::text, status::text, email_verified,
    self_excluded_until, created_at, last_login_at";

fn user_row(r: &Row) -> UserRow {
    UserRow {
        id: r.get(0),
        username: r.get(1),
        email: r.get(2),
        role: r.get(3),
        status: r.get(4),
        email_verified: r.get(5),
        self_excluded_until: r.get(6),
        created_at: r.get(7),
        last_login_at: r.get(8),
    }
}

/// What registration (or `winzo create-user`) stores.
pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password_phc: &'a str,
    pub salt: &'a str,
    pub role: &'a str,
    pub date_of_birth: Option<NaiveDate>,
    pub country_code: &'a str,
    pub currency_code: &'a str,
}

/// Why a user could not be inserted.
#[derive(Debug)]
pub enum InsertUserError {
    UsernameTaken,
    EmailTaken,
    /// The database's own age check (V3) refused the date of birth.
    UnderAge,
    Db(tokio_postgres::Error),
}

/// Whether `err` is the V3 trigger's `user_profiles_age_check` (the application checks
/// first, in UTC; the trigger uses the session's date, so they can differ by a day).
pub fn is_under_age_violation(err: &tokio_postgres::Error) -> bool {
    err.as_db_error()
        .is_some_and(|db| db.constraint() == Some("user_profiles_age_check"))
}

impl From<tokio_postgres::Error> for InsertUserError {
    fn from(err: tokio_postgres::Error) -> Self {
        if let Some(db) = err.as_db_error() {
            match db.constraint() {
                Some("users_email_lower_key") => return InsertUserError::EmailTaken,
                Some("users_username_lower_key") => return InsertUserError::UsernameTaken,
                Some("user_profiles_age_check") => return InsertUserError::UnderAge,
                _ => {}
            }
        }
        InsertUserError::Db(err)
    }
}

/// Inserts the user and its profile, preferences and (zero) balance rows. Run it in a
/// transaction: the four rows exist together or not at all.
pub async fn insert_user<C: GenericClient>(
    tx: &C,
    user: &NewUser<'_>,
) -> Result<UserRow, InsertUserError> {
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO users (username, email, password_hash, salt, role)
                 VALUES ($1, $2, $3, $4, $5::text::user_role) RETURNING {USER_COLUMNS}"
            ),
            &[
                &user.username,
                &user.email,
                &user.password_phc,
                &user.salt,
                &user.role,
            ],
        )
        .await?;
    let created = user_row(&row);
    tx.execute(
        "INSERT INTO user_profiles (user_id, date_of_birth, country_code, currency_code)
         VALUES ($1, $2, $3, $4)",
        &[
            &created.id,
            &user.date_of_birth,
            &user.country_code,
            &user.currency_code,
        ],
    )
    .await?;
    tx.execute(
        "INSERT INTO user_preferences (user_id) VALUES ($1)",
        &[&created.id],
    )
    .await?;
    tx.execute(
        "INSERT INTO user_balances (user_id, currency_code) VALUES ($1, $2)",
        &[&created.id, &user.currency_code],
    )
    .await?;
    Ok(created)
}

/// The fields a login needs.
pub struct LoginRow {
    pub user: UserRow,
    pub password_hash: String,
}

/// Finds an account by username or email, case-insensitively (served by the
/// `lower(...)` unique indexes).
pub async fn find_for_login<C: GenericClient>(
    client: &C,
    login: &str,
) -> Result<Option<LoginRow>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {USER_COLUMNS}, password_hash FROM users
                 WHERE lower(username) = lower($1) OR lower(email) = lower($1) LIMIT 1"
            ),
            &[&login],
        )
        .await?;
    Ok(row.map(|r| LoginRow {
        user: user_row(&r),
        password_hash: r.get(9),
    }))
}

pub async fn touch_last_login<C: GenericClient>(
    client: &C,
    user_id: UserId,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "UPDATE users SET last_login_at = now() WHERE id = $1",
            &[&user_id],
        )
        .await?;
    Ok(())
}

pub async fn get_user<C: GenericClient>(
    client: &C,
    user_id: UserId,
) -> Result<Option<UserRow>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
            &[&user_id],
        )
        .await?;
    Ok(row.as_ref().map(user_row))
}

/// Extends the self-exclusion to `until` unless it already runs longer; answers the end
/// in force afterwards (never earlier than before).
pub async fn extend_self_exclusion<C: GenericClient>(
    tx: &C,
    user_id: UserId,
    until: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            "UPDATE users SET self_excluded_until = GREATEST(COALESCE(self_excluded_until, $2), $2)
             WHERE id = $1 RETURNING self_excluded_until",
            &[&user_id, &until],
        )
        .await?;
    Ok(row.and_then(|r| r.get(0)))
}

/// The trading desk's view of an account.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TradingUser {
    #[serde(flatten)]
    pub user: UserRow,
    /// Multiplies the markets' stake limits for this user.
    #[schema(value_type = String)]
    pub stake_factor: Decimal,
    /// Per-user stake cap (money string), or null.
    #[schema(value_type = Option<String>)]
    pub max_stake: Option<Decimal>,
    #[schema(value_type = Option<String>)]
    pub balance: Option<Decimal>,
}

pub async fn get_trading_user<C: GenericClient>(
    client: &C,
    user_id: UserId,
) -> Result<Option<TradingUser>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT u.id, u.username, u.email, u.role::text, u.status::text, u.email_verified,
                    u.self_excluded_until, u.created_at, u.last_login_at,
                    u.stake_factor, u.max_stake, b.balance
             FROM users u LEFT JOIN user_balances b ON b.user_id = u.id WHERE u.id = $1",
            &[&user_id],
        )
        .await?;
    Ok(row.map(|r| TradingUser {
        user: user_row(&r),
        stake_factor: r.get(9),
        max_stake: r.get(10),
        balance: r.get(11),
    }))
}

/// The trading desk's changes; `None` leaves a field as it is. `max_stake: Some(None)`
/// removes the cap.
pub struct TradingPatch {
    pub status: Option<UserStatus>,
    pub stake_factor: Option<Decimal>,
    pub max_stake: Option<Option<Decimal>>,
    pub role: Option<String>,
}

/// Locks an account's row for a staff change; answers its status and role before it, or
/// `None` when the user does not exist.
pub async fn lock_for_staff_change<C: GenericClient>(
    tx: &C,
    user_id: UserId,
) -> Result<Option<(String, String)>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            "SELECT status::text, role::text FROM users WHERE id = $1 FOR UPDATE",
            &[&user_id],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Applies a patch to a row locked by [`lock_for_staff_change`].
pub async fn patch_trading_user<C: GenericClient>(
    tx: &C,
    user_id: UserId,
    patch: &TradingPatch,
) -> Result<(), tokio_postgres::Error> {
    let (set_max, max) = match patch.max_stake {
        Some(v) => (true, v),
        None => (false, None),
    };
    tx.execute(
        "UPDATE users SET
            status = COALESCE($2::user_status, status),
            stake_factor = COALESCE($3, stake_factor),
            max_stake = CASE WHEN $4 THEN $5 ELSE max_stake END,
            role = COALESCE($6::text::user_role, role)
         WHERE id = $1",
        &[
            &user_id,
            &patch.status,
            &patch.stake_factor,
            &set_max,
            &max,
            &patch.role,
        ],
    )
    .await?;
    Ok(())
}

/// An account's status, self-exclusion and currency (fixed at registration; `USD` for an
/// account without a balance row yet).
pub async fn restriction<C: GenericClient>(
    client: &C,
    user_id: UserId,
) -> Result<Option<Restriction>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT u.status::text, u.self_excluded_until,
                    coalesce(b.currency_code, p.currency_code, 'USD'),
                    coalesce(p.verification_status = 'verified', false)
             FROM users u
             LEFT JOIN user_balances b ON b.user_id = u.id
             LEFT JOIN user_profiles p ON p.user_id = u.id
             WHERE u.id = $1",
            &[&user_id],
        )
        .await?;
    Ok(row.map(|r| Restriction {
        status: r.get(0),
        self_excluded_until: r.get(1),
        currency_code: r.get::<_, String>(2).trim().to_string(),
        verified: r.get(3),
    }))
}

/// What a deposit or withdrawal needs to know about the account.
pub struct Restriction {
    pub status: UserStatus,
    pub self_excluded_until: Option<DateTime<Utc>>,
    pub currency_code: String,
    /// `user_profiles.verification_status = verified`.
    pub verified: bool,
}

/// `user_profiles` as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Profile {
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub phone: Option<String>,
    pub country_code: String,
    pub timezone: Option<String>,
    pub language_code: Option<String>,
    pub currency_code: Option<String>,
    pub verification_status: String,
    pub updated_at: DateTime<Utc>,
}

const PROFILE_COLUMNS: &str = "user_id, first_name, last_name, date_of_birth, phone,
    country_code, timezone, language_code, currency_code, verification_status::text, updated_at";

fn profile_row(r: &Row) -> Profile {
    Profile {
        user_id: r.get(0),
        first_name: r.get(1),
        last_name: r.get(2),
        date_of_birth: r.get(3),
        phone: r.get(4),
        country_code: r.get(5),
        timezone: r.get(6),
        language_code: r.get(7),
        currency_code: r.get(8),
        verification_status: r.get(9),
        updated_at: r.get(10),
    }
}

pub async fn get_profile<C: GenericClient>(
    client: &C,
    user_id: UserId,
) -> Result<Option<Profile>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!("SELECT {PROFILE_COLUMNS} FROM user_profiles WHERE user_id = $1"),
            &[&user_id],
        )
        .await?;
    Ok(row.as_ref().map(profile_row))
}

/// Validated profile changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProfilePatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub phone: Option<String>,
    pub country_code: Option<String>,
    pub timezone: Option<String>,
    pub language_code: Option<String>,
    pub currency_code: Option<String>,
}

pub async fn update_profile<C: GenericClient>(
    tx: &C,
    user_id: UserId,
    p: &ProfilePatch,
) -> Result<Option<Profile>, tokio_postgres::Error> {
    let row = tx
        .query_opt(
            &format!(
                "UPDATE user_profiles SET
                    first_name = COALESCE($2, first_name), last_name = COALESCE($3, last_name),
                    date_of_birth = COALESCE($4, date_of_birth), phone = COALESCE($5, phone),
                    country_code = COALESCE($6, country_code), timezone = COALESCE($7, timezone),
                    language_code = COALESCE($8, language_code),
                    currency_code = COALESCE($9, currency_code)
                 WHERE user_id = $1 RETURNING {PROFILE_COLUMNS}"
            ),
            &[
                &user_id,
                &p.first_name,
                &p.last_name,
                &p.date_of_birth,
                &p.phone,
                &p.country_code,
                &p.timezone,
                &p.language_code,
                &p.currency_code,
            ],
        )
        .await?;
    Ok(row.as_ref().map(profile_row))
}

/// `user_preferences` columns the API reads and writes.
#[derive(Debug, Clone)]
pub struct PreferencesRow {
    pub odds_format: String,
    pub notifications: Value,
    pub betting_limits: Value,
    pub responsible_gaming: Value,
    pub updated_at: DateTime<Utc>,
}

/// Reads the preferences; `lock` takes a row lock (for read-modify-write in a transaction).
pub async fn get_preferences<C: GenericClient>(
    client: &C,
    user_id: UserId,
    lock: bool,
) -> Result<Option<PreferencesRow>, tokio_postgres::Error> {
    let sql = if lock {
        "SELECT odds_format::text, notifications, betting_limits, responsible_gaming, updated_at
         FROM user_preferences WHERE user_id = $1 FOR UPDATE"
    } else {
        "SELECT odds_format::text, notifications, betting_limits, responsible_gaming, updated_at
         FROM user_preferences WHERE user_id = $1"
    };
    let row = client.query_opt(sql, &[&user_id]).await?;
    Ok(row.map(|r| PreferencesRow {
        odds_format: r.get(0),
        notifications: r.get(1),
        betting_limits: r.get(2),
        responsible_gaming: r.get(3),
        updated_at: r.get(4),
    }))
}

/// Writes the whole preferences row (the caller merged the patch under a row lock).
pub async fn write_preferences<C: GenericClient>(
    tx: &C,
    user_id: UserId,
    p: &PreferencesRow,
) -> Result<DateTime<Utc>, tokio_postgres::Error> {
    let row = tx
        .query_one(
            "UPDATE user_preferences SET odds_format = $2::text::odds_format, notifications = $3,
                betting_limits = $4, responsible_gaming = $5
             WHERE user_id = $1 RETURNING updated_at",
            &[
                &user_id,
                &p.odds_format,
                &p.notifications,
                &p.betting_limits,
                &p.responsible_gaming,
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// Locks the user's row until the transaction ends (serializes per-user checks such as
/// "at most N payment methods").
pub async fn lock_user<C: GenericClient>(
    tx: &C,
    user_id: UserId,
) -> Result<(), tokio_postgres::Error> {
    tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id])
        .await?;
    Ok(())
}
