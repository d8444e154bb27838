//! API keys. A key is shown once when created and stored only as its SHA-256 digest: keys
//! are 190 bits of randomness, so a fast digest is enough (no password-style stretching,
//! which would cost every request). Lookup is by digest; the digest found is compared
//! again in constant time.

use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whose key it is; decides the visible prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    User,
    Station,
}

/// A new random key: `tp_user_…` or `tp_station_…` followed by 32 alphanumerics.
pub fn generate(kind: KeyKind) -> String {
    let body: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    match kind {
        KeyKind::User => format!("tp_user_{body}"),
        KeyKind::Station => format!("tp_station_{body}"),
    }
}

/// Hex SHA-256 of the key: what the database stores and looks keys up by.
pub fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Constant-time comparison of two digests.
pub fn digests_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The part of a key that may be shown back (e.g. a station's `api_key`): its prefix
/// and first four secret characters, never enough to use it.
pub fn masked(key: &str) -> String {
    let cut = key.rfind('_').map_or(0, |i| i + 1);
    let shown: String = key[cut..].chars().take(4).collect();
    format!("{}{}…", &key[..cut], shown)
}

/// Smallest key length accepted from seed files: shorter keys are guessable.
pub const MIN_KEY_LEN: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_masked() {
        let a = generate(KeyKind::User);
        let b = generate(KeyKind::User);
        assert_ne!(a, b);
        assert!(a.starts_with("tp_user_") && a.len() == 40);
        assert!(generate(KeyKind::Station).starts_with("tp_station_"));
        assert_eq!(masked("tp_station_AbCdEfGh"), "tp_station_AbCd…");
        assert!(digests_match(&digest(&a), &digest(&a)));
        assert!(!digests_match(&digest(&a), &digest(&b)));
        assert!(!digests_match(&digest(&a), &digest(&a.to_uppercase())));
    }
}
