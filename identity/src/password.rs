//! argon2id password hashing (OWASP parameters: m = 19 MiB, t = 2, p = 1) on blocking threads, bounded
//! by a semaphore so a burst of sign-ins cannot starve the async runtime or exhaust memory.

use crate::error::{Context, Error, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tokio::sync::Semaphore;

const MIN_LEN: usize = 10;
const MAX_LEN: usize = 256;

/// A short list of passwords too common to allow (lowercased comparison).
const COMMON: &[&str] = &[
    "password",
    "password1",
    "password12",
    "password123",
    "password1234",
    "passw0rd123",
    "1234567890",
    "12345678910",
    "0123456789",
    "qwertyuiop",
    "qwerty1234",
    "qwerty12345",
    "iloveyou12",
    "letmein123",
    "welcome123",
    "admin12345",
    "administrator",
    "changeme123",
    "football123",
    "baseball123",
    "sunshine123",
    "princess123",
    "dragon1234",
    "monkey1234",
    "abc1234567",
    "trustno1234",
    "1q2w3e4r5t",
    "zaq12wsxcde",
    "superman123",
    "portcullis",
];

fn argon2() -> Argon2<'static> {
    // Params::new only fails for out-of-range values; these are the OWASP recommendation.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the password rules: 10–256 characters and not a well-known password.
pub fn check_policy(password: &SecretString) -> Result<()> {
    let pw = password.expose_secret();
    let len = pw.chars().count();
    if len < MIN_LEN {
        return Err(Error::invalid(
            "password",
            "password_too_short",
            format!("Use at least {MIN_LEN} characters."),
        ));
    }
    if len > MAX_LEN {
        return Err(Error::invalid(
            "password",
            "password_too_long",
            format!("Use at most {MAX_LEN} characters."),
        ));
    }
    if COMMON.contains(&pw.to_lowercase().as_str()) {
        return Err(Error::invalid(
            "password",
            "password_too_common",
            "This password is too common; choose another.",
        ));
    }
    Ok(())
}

#[derive(Clone)]
pub(crate) struct Hasher {
    permits: Arc<Semaphore>,
    /// Verified against when the account does not exist, so timing does not reveal which emails do.
    dummy: Arc<String>,
}

impl Hasher {
    pub(crate) fn new() -> Self {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let salt = SaltString::generate(&mut OsRng);
        let dummy = argon2()
            .hash_password(b"portcullis-dummy-password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default();
        Self {
            permits: Arc::new(Semaphore::new(workers)),
            dummy: Arc::new(dummy),
        }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("Password hashing pool is closed")?;
        tokio::task::spawn_blocking(f)
            .await
            .context("Password hashing task failed")
    }

    pub(crate) async fn hash(&self, password: SecretString) -> Result<SecretString> {
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|h| SecretString::from(h.to_string()))
                .map_err(|e| e.to_string())
        })
        .await?
        .map_err(|e| Error::Internal {
            context: "Failed to hash a password",
            source: e.into(),
        })
    }

    /// Verifies `password` against `stored`, or against a dummy hash when there is none, so the
    /// work done is the same either way. Returns true only for a real match.
    pub(crate) async fn verify(
        &self,
        password: SecretString,
        stored: Option<SecretString>,
    ) -> Result<bool> {
        let dummy = self.dummy.clone();
        self.run(move || {
            let real = stored.is_some();
            let hash = stored.map_or_else(|| dummy.to_string(), |s| s.expose_secret().to_owned());
            let ok = PasswordHash::new(&hash).is_ok_and(|parsed| {
                argon2()
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_ok()
            });
            real && ok
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_refuses_short_and_common_passwords() {
        assert_eq!(
            check_policy(&"short".into()).err().map(|e| e.code()),
            Some("password_too_short")
        );
        assert_eq!(
            check_policy(&"Password123".into()).err().map(|e| e.code()),
            Some("password_too_common")
        );
        assert!(check_policy(&"correct horse battery".into()).is_ok());
    }

    #[tokio::test]
    async fn hashes_verify_and_the_dummy_never_matches() {
        let hasher = Hasher::new();
        let hash = hasher.hash("correct horse battery".into()).await.ok();
        assert!(hash.as_ref().is_some_and(|h| {
            h.expose_secret()
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
        }));
        assert!(matches!(
            hasher
                .verify("correct horse battery".into(), hash.clone())
                .await,
            Ok(true)
        ));
        assert!(matches!(
            hasher.verify("wrong horse battery".into(), hash).await,
            Ok(false)
        ));
        assert!(matches!(
            hasher
                .verify("portcullis-dummy-password".into(), None)
                .await,
            Ok(false)
        ));
    }
}
