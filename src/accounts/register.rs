//! Creating accounts: registration and `winzo create-user` share this path, so every
//! account is validated, hashed and stored the same way.
use deadpool_postgres::Pool;

use super::validate;
use crate::auth::{password, Role};
use crate::db::audit::{self, Actor};
use crate::db::users::{self, InsertUserError, NewUser, UserRow};

/// Why an account was not created.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Invalid(#[from] validate::Invalid),
    #[error("username is taken")]
    UsernameTaken,
    #[error("email is already registered")]
    EmailTaken,
    #[error(transparent)]
    Busy(#[from] password::pool::PoolError),
    #[error("{0}")]
    Db(String),
}

crate::db_error_from!(RegisterError);

/// What an account is made from (already parsed from JSON or the command line).
pub struct Registration<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub date_of_birth: Option<&'a str>,
    pub country_code: Option<&'a str>,
    pub currency_code: Option<&'a str>,
    pub role: Role,
    /// The book's currencies (`accounts.currencies`); the first is the default.
    pub currencies: &'a [String],
}

/// Validates, hashes (on the blocking pool: Argon2 takes tens of milliseconds) and stores
/// the user with its profile, preferences and zero balance in one transaction.
pub async fn register(
    db: &Pool,
    passwords: &password::pool::PasswordPool,
    r: &Registration<'_>,
    actor: Actor,
) -> Result<UserRow, RegisterError> {
    let country = r.country_code.unwrap_or("US");
    let default = r.currencies.first().map_or("USD", String::as_str);
    let currency = r.currency_code.unwrap_or(default);
    // Every field is checked, and every failing one reported at once.
    let dob = r.date_of_birth.map(validate::date_of_birth).transpose();
    let checks = [
        validate::username(r.username),
        validate::email(r.email),
        validate::password(r.password),
        dob.as_ref().map(|_| ()).map_err(Clone::clone),
        validate::country_code(country),
        validate::supported_currency(currency, r.currencies),
    ];
    validate::all(checks)?;
    let dob = dob?;
    let pw = r.password.to_string();
    let hashed = passwords
        .run(move || password::hash(&pw))
        .await?
        .map_err(|e| RegisterError::Db(format!("hashing the password: {e:#}")))?;
    let mut client = db.get().await?;
    let tx = client.transaction().await?;
    audit::set_actor(&tx, actor).await?;
    let inserted = users::insert_user(
        &tx,
        &NewUser {
            username: r.username,
            email: r.email,
            password_phc: &hashed.phc,
            salt: &hashed.salt,
            role: r.role.as_str(),
            date_of_birth: dob,
            country_code: country,
            currency_code: currency,
        },
    )
    .await;
    let user = match inserted {
        Ok(user) => user,
        Err(InsertUserError::UsernameTaken) => return Err(RegisterError::UsernameTaken),
        Err(InsertUserError::EmailTaken) => return Err(RegisterError::EmailTaken),
        Err(InsertUserError::UnderAge) => return Err(validate::under_age().into()),
        Err(InsertUserError::Db(err)) => return Err(err.into()),
    };
    tx.commit().await?;
    Ok(user)
}

/// `winzo create-user`: the same path with a role, against the configured database.
pub async fn create_user(
    db: &crate::db::DatabaseSettings,
    currencies: &[String],
    role: &str,
    username: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<UserRow> {
    let role = Role::parse(role).ok_or_else(|| {
        anyhow::anyhow!("unknown role {role:?} (user, support, moderator, admin)")
    })?;
    let pool = crate::db::build_pool(db)?;
    let registration = Registration {
        username,
        email,
        password,
        date_of_birth: None,
        country_code: None,
        currency_code: None,
        role,
        currencies,
    };
    let passwords = password::pool::PasswordPool::new(1, 4);
    register(&pool, &passwords, &registration, Actor::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}
