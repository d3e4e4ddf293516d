//! Validation of account input: usernames, emails, passwords, dates of birth, ISO-shaped
//! codes and free-text fields. Pure; every refusal is a 422 naming the field.
use chrono::{Datelike, NaiveDate, Utc};
use serde_json::json;

/// Why an input was refused: a 422 naming the field (`validation_failed`, or `under_age`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub code: &'static str,
    pub message: String,
    pub details: serde_json::Value,
}

impl Invalid {
    /// Replaces the details (e.g. to add the refusal's reason).
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

pub const USERNAME_CHARS_MIN: usize = 3;
pub const USERNAME_CHARS_MAX: usize = 50;
pub const EMAIL_BYTES_MAX: usize = 254;
pub const PASSWORD_CHARS_MIN: usize = 10;
/// Bounds the work one login can cost (Argon2 hashes the whole input).
pub const PASSWORD_BYTES_MAX: usize = 1024;
pub const NAME_CHARS_MAX: usize = 100;
pub const ADULT_AGE_YEARS: u32 = 18;

/// Every refusal among `checks` at once: the first one's code, field and details, with
/// `details.fields` listing each failing field and its message.
pub fn all(checks: impl IntoIterator<Item = Result<(), Invalid>>) -> Result<(), Invalid> {
    let failed: Vec<Invalid> = checks.into_iter().filter_map(Result::err).collect();
    let Some(first) = failed.first().cloned() else {
        return Ok(());
    };
    if failed.len() == 1 {
        return Err(first);
    }
    let fields: Vec<serde_json::Value> = failed
        .iter()
        .map(|f| json!({"field": f.details["field"], "code": f.code, "message": f.message}))
        .collect();
    let mut details = first.details.clone();
    if let Some(d) = details.as_object_mut() {
        d.insert("fields".into(), json!(fields));
    }
    Err(Invalid {
        code: first.code,
        message: failed
            .iter()
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        details,
    })
}

/// A `validation_failed` refusal of `field`.
pub fn invalid(field: &str, message: &str) -> Invalid {
    Invalid {
        code: "validation_failed",
        message: format!("{field}: {message}"),
        details: json!({ "field": field }),
    }
}

pub fn username(input: &str) -> Result<(), Invalid> {
    let n = input.chars().count();
    if !(USERNAME_CHARS_MIN..=USERNAME_CHARS_MAX).contains(&n) {
        return Err(invalid("username", "must be 3 to 50 characters"));
    }
    if !input
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(invalid(
            "username",
            "may contain only letters, digits, '_', '.' and '-'",
        ));
    }
    Ok(())
}

/// A practical email check (ASCII, one `@`, dotted domain with a 2+ letter last label),
/// stricter than the database's CHECK so that whatever passes here is stored.
pub fn email(input: &str) -> Result<(), Invalid> {
    let bad = || invalid("email", "is not a valid email address");
    if input.len() > EMAIL_BYTES_MAX || !input.is_ascii() {
        return Err(bad());
    }
    let (local, domain) = input.split_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|l| l.len() >= 2);
    if local_ok && domain_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

pub fn password(input: &str) -> Result<(), Invalid> {
    if input.len() > PASSWORD_BYTES_MAX {
        return Err(invalid("password", "is too long"));
    }
    if input.chars().count() < PASSWORD_CHARS_MIN {
        return Err(invalid("password", "must be at least 10 characters"));
    }
    Ok(())
}

/// Parses `YYYY-MM-DD` and requires the person to be an adult today.
pub fn date_of_birth(input: &str) -> Result<NaiveDate, Invalid> {
    let date = NaiveDate::parse_from_str(input, "%Y-%m-%d")
        .map_err(|_| invalid("date_of_birth", "must be a date YYYY-MM-DD"))?;
    if date.year() < 1900 {
        return Err(invalid("date_of_birth", "is not plausible"));
    }
    if !is_adult(date, Utc::now().date_naive()) {
        return Err(under_age());
    }
    Ok(date)
}

/// The 422 `under_age` refusal.
pub fn under_age() -> Invalid {
    Invalid {
        code: "under_age",
        message: "you must be at least 18 years old".into(),
        details: json!({ "field": "date_of_birth" }),
    }
}

/// At least [`ADULT_AGE_YEARS`] on `today` (a 29 February birthday turns on 1 March).
pub fn is_adult(born: NaiveDate, today: NaiveDate) -> bool {
    let years = today.year() - born.year();
    let had_birthday = (today.month(), today.day()) >= (born.month(), born.day());
    let age = if had_birthday { years } else { years - 1 };
    age >= ADULT_AGE_YEARS as i32
}

fn code(field: &str, input: &str, len: usize, upper: bool) -> Result<(), Invalid> {
    let ok = input.len() == len
        && input.chars().all(|c| {
            if upper {
                c.is_ascii_uppercase()
            } else {
                c.is_ascii_lowercase()
            }
        });
    if ok {
        Ok(())
    } else {
        let case = if upper { "uppercase" } else { "lowercase" };
        Err(invalid(
            field,
            &format!("must be {len} {case} ASCII letters"),
        ))
    }
}

/// ISO 3166-1 alpha-2 shape, e.g. `GB`.
pub fn country_code(input: &str) -> Result<(), Invalid> {
    code("country_code", input, 2, true)
}

/// ISO 4217 shape, e.g. `USD`.
pub fn currency_code(input: &str) -> Result<(), Invalid> {
    code("currency_code", input, 3, true)
}

/// One of the book's supported currencies (`accounts.currencies`).
pub fn supported_currency(input: &str, supported: &[String]) -> Result<(), Invalid> {
    currency_code(input)?;
    if supported.iter().any(|c| c == input) {
        Ok(())
    } else {
        Err(invalid(
            "currency_code",
            &format!("must be one of {}", supported.join(", ")),
        )
        .with_details(
            json!({"field": "currency_code", "reason": "unsupported_currency",
                                     "supported": supported}),
        ))
    }
}

/// ISO 639-1 shape, e.g. `en`.
pub fn language_code(input: &str) -> Result<(), Invalid> {
    code("language_code", input, 2, false)
}

/// An IANA zone name shape, e.g. `Europe/London`.
pub fn timezone(input: &str) -> Result<(), Invalid> {
    let ok = !input.is_empty()
        && input.len() <= 50
        && input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '+' | '-'));
    ok.then_some(())
        .ok_or_else(|| invalid("timezone", "is not a time-zone name"))
}

pub fn phone(input: &str) -> Result<(), Invalid> {
    let digits = input.chars().filter(char::is_ascii_digit).count();
    let ok = input.len() <= 20
        && digits >= 5
        && input
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')'));
    ok.then_some(())
        .ok_or_else(|| invalid("phone", "is not a phone number"))
}

/// A person's name: 1 to 100 characters, no control characters.
pub fn name(field: &str, input: &str) -> Result<(), Invalid> {
    let n = input.chars().count();
    if n == 0 || n > NAME_CHARS_MAX || input.chars().any(char::is_control) {
        return Err(invalid(field, "must be 1 to 100 printable characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_for_shape() {
        for ok in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "x_y@xn--p1ai.ru",
        ] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "a@b.c",
            "@b.co",
            "a@@b.co",
            "a@.b.co",
            "a.@b.co",
            "a b@c.de",
            "a@b.co'; DROP TABLE users;--",
            "ü@b.co",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn adulthood_counts_whole_years() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(is_adult(d("2000-05-10"), d("2018-05-10")));
        assert!(!is_adult(d("2000-05-10"), d("2018-05-09")));
        assert!(!is_adult(d("2000-02-29"), d("2018-02-28")));
        assert!(is_adult(d("2000-02-29"), d("2018-03-01")));
    }

    #[test]
    fn every_failing_field_is_reported_at_once() {
        let err = all([username("x"), Ok(()), email("nope"), password("short")]).unwrap_err();
        let fields: Vec<&str> = err.details["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["username", "email", "password"]);
        assert_eq!(err.details["field"], "username");
        assert!(all([Ok(()), Ok(())]).is_ok());
        assert_eq!(
            all([email("nope")]).unwrap_err().details.get("fields"),
            None
        );
    }

    #[test]
    fn codes_and_usernames() {
        assert!(country_code("GB").is_ok());
        assert!(country_code("gb").is_err());
        assert!(country_code("GBR").is_err());
        assert!(currency_code("EUR").is_ok());
        assert!(currency_code("E1R").is_err());
        assert!(username("ab").is_err());
        assert!(username("abc").is_ok());
        assert!(username("robert'); --").is_err());
        assert!(password("short").is_err());
        assert!(password("long enough pw").is_ok());
    }
}
