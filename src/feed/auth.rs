//! Push authentication: HMAC-SHA256 over `"{timestamp}.{raw body}"` with the provider's
//! secret, compared in constant time, and a timestamp window against replays.
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::FeedSettings;

type HmacSha256 = Hmac<Sha256>;

/// Why a push was refused (all answered 401 with the same body: no oracle for attackers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FeedAuthError {
    #[error("unknown provider")]
    UnknownProvider,
    #[error("missing X-Feed-Timestamp or X-Feed-Signature")]
    MissingHeaders,
    #[error("timestamp is not unix seconds")]
    BadTimestamp,
    #[error("timestamp outside the accepted window")]
    Stale,
    #[error("signature is not hex")]
    BadSignatureEncoding,
    #[error("signature does not match")]
    BadSignature,
}

impl FeedAuthError {
    /// The metrics label of the refusal.
    pub fn label(self) -> &'static str {
        match self {
            FeedAuthError::UnknownProvider => "unknown_provider",
            FeedAuthError::MissingHeaders => "missing_signature",
            FeedAuthError::BadTimestamp | FeedAuthError::Stale => "stale",
            FeedAuthError::BadSignatureEncoding | FeedAuthError::BadSignature => "bad_signature",
        }
    }
}

/// The hex signature of a push (what providers, and `winzo feed-sim`, send).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = new_mac(secret, timestamp);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn new_mac(secret: &str, timestamp: i64) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac
}

/// Verifies a push on its raw bytes before anything parses them.
pub fn verify(
    settings: &FeedSettings,
    provider: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_s: i64,
) -> Result<(), FeedAuthError> {
    let provider = settings
        .provider(provider)
        .ok_or(FeedAuthError::UnknownProvider)?;
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(FeedAuthError::MissingHeaders);
    };
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| FeedAuthError::BadTimestamp)?;
    if now_s.abs_diff(ts) > settings.timestamp_skew_max_s.unsigned_abs() {
        return Err(FeedAuthError::Stale);
    }
    let expected =
        hex::decode(signature.trim()).map_err(|_| FeedAuthError::BadSignatureEncoding)?;
    let mut mac = new_mac(&provider.secret, ts);
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| FeedAuthError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> FeedSettings {
        FeedSettings {
            body_max_bytes: 1024,
            messages_per_push_max: 10,
            timestamp_skew_max_s: 300,
            watchdog_interval_ms: 1000,
            suspend_batch_markets_max: 100,
            odds_max: rust_decimal::Decimal::from(1000),
            providers: vec![super::super::ProviderSettings {
                id: "p".into(),
                secret: "s3cret".into(),
                heartbeat_window_ms: 1000,
            }],
            suspend_on_score: Default::default(),
            db_connections_max: 1,
            markets_cached_per_event_max: 16,
        }
    }

    #[test]
    fn a_correct_signature_within_the_window_verifies() {
        let sig = sign("s3cret", 1000, b"{}");
        assert_eq!(
            verify(&settings(), "p", Some("1000"), Some(&sig), b"{}", 1200),
            Ok(())
        );
    }

    #[test]
    fn every_kind_of_bad_push_is_refused() {
        let s = settings();
        let sig = sign("s3cret", 1000, b"{}");
        assert_eq!(
            verify(&s, "x", Some("1000"), Some(&sig), b"{}", 1000),
            Err(FeedAuthError::UnknownProvider)
        );
        assert_eq!(
            verify(&s, "p", None, Some(&sig), b"{}", 1000),
            Err(FeedAuthError::MissingHeaders)
        );
        assert_eq!(
            verify(&s, "p", Some("1000"), Some(&sig), b"{ }", 1000),
            Err(FeedAuthError::BadSignature)
        );
        assert_eq!(
            verify(&s, "p", Some("1000"), Some(&sig), b"{}", 1301),
            Err(FeedAuthError::Stale)
        );
        assert_eq!(
            verify(&s, "p", Some("1000"), Some("zz"), b"{}", 1000),
            Err(FeedAuthError::BadSignatureEncoding)
        );
        let other = sign("other", 1000, b"{}");
        assert_eq!(
            verify(&s, "p", Some("1000"), Some(&other), b"{}", 1000),
            Err(FeedAuthError::BadSignature)
        );
    }
}
