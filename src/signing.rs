//! Signed URLs for uploads and downloads. The signature is an HMAC-SHA256 over the
//! attachment id, the HTTP method and the expiry time, keyed by a server secret kept in
//! the database (so URLs survive restarts). A wrong, tampered or expired signature is 403.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::db::Id;

#[derive(Clone)]
pub struct Signer {
    secret: std::sync::Arc<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<secret>)")
    }
}

/// Why a signature was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SignatureError {
    Invalid,
    Expired,
}

impl Signer {
    pub fn new(secret: Vec<u8>) -> Self {
        Signer {
            secret: std::sync::Arc::new(secret),
        }
    }

    fn mac(&self, id: Id, method: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any size");
        mac.update(id.to_string().as_bytes());
        mac.update(b"\n");
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// Hex signature for `method` on attachment `id` until `expires` (Unix seconds).
    pub fn sign(&self, id: Id, method: &str, expires: i64) -> String {
        hex::encode(self.mac(id, method, expires).finalize().into_bytes())
    }

    /// Checks a signature (in constant time) and then the expiry.
    pub fn verify(
        &self,
        id: Id,
        method: &str,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        let Ok(sig) = hex::decode(signature) else {
            return Err(SignatureError::Invalid);
        };
        self.mac(id, method, expires)
            .verify_slice(&sig)
            .map_err(|_| SignatureError::Invalid)?;
        if now > expires {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_id_method_and_expiry() {
        let s = Signer::new(b"secret".to_vec());
        let id = Id::new();
        let sig = s.sign(id, "PUT", 1000);
        assert_eq!(s.verify(id, "PUT", 1000, &sig, 999), Ok(()));
        assert_eq!(
            s.verify(id, "PUT", 1000, &sig, 1001),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            s.verify(id, "GET", 1000, &sig, 999),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            s.verify(id, "PUT", 2000, &sig, 999),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            s.verify(Id::new(), "PUT", 1000, &sig, 999),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            s.verify(id, "PUT", 1000, "zz", 999),
            Err(SignatureError::Invalid)
        );
        let other = Signer::new(b"other".to_vec());
        assert_eq!(
            other.verify(id, "PUT", 1000, &sig, 999),
            Err(SignatureError::Invalid)
        );
    }
}
