//! A normalised email address. Emails are attributes, never keys: rows are found by id.

use crate::error::{Error, Result};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Trims, lowercases and checks the shape `local@domain.tld` (≤ 254 characters).
    pub fn parse(input: &str) -> Result<Self> {
        let email = input.trim().to_lowercase();
        let invalid = || Error::invalid("email", "invalid_email", "Enter a valid email address.");
        if email.is_empty() || email.len() > 254 {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.chars().any(|c| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(c, '<' | '>' | '"' | ',' | ';' | '@')
            });
        if domain_ok && local_ok {
            Ok(Self(email))
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For values read back from our own database, which were parsed on the way in.
    pub(crate) fn from_trusted(value: String) -> Self {
        Self(value)
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_case_and_whitespace() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").map(|e| e.0).ok(),
            Some("ada@example.com".to_owned())
        );
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@@x.com",
            "ada@.com",
            "ada@x..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    proptest! {
        #[test]
        fn parsing_is_idempotent(s in "\\PC{0,80}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(e.as_str()).ok(), Some(e));
            }
        }

        #[test]
        fn simple_addresses_parse(local in "[a-z0-9._+-]{1,20}", domain in "[a-z0-9-]{1,20}\\.[a-z]{2,6}") {
            let email = format!("{local}@{domain}");
            prop_assert_eq!(Email::parse(&email).map(|e| e.0).ok(), Some(email));
        }
    }
}
