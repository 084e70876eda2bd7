//! Applications: one per product surface. (The application model and its storage arrive with the
//! applications capability; this module holds its types so far.)

use crate::error::{Error, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};

/// What kind of surface an application is. Fixed at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppType {
    /// Server-side web app; confidential (holds a client secret).
    Web,
    /// Single-page app in the browser; public.
    Spa,
    /// Mobile, desktop or CLI app; public.
    Native,
    /// Backend service without users; confidential.
    M2m,
}

impl AppType {
    pub const ALL: [AppType; 4] = [AppType::Web, AppType::Spa, AppType::Native, AppType::M2m];

    pub fn as_str(self) -> &'static str {
        match self {
            AppType::Web => "web",
            AppType::Spa => "spa",
            AppType::Native => "native",
            AppType::M2m => "m2m",
        }
    }

    pub fn parse(input: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == input.trim())
            .ok_or_else(|| {
                Error::invalid(
                    "type",
                    "invalid_type",
                    "Type must be one of web, spa, native, m2m.",
                )
            })
    }

    /// Confidential clients authenticate with a secret; public ones cannot keep one.
    pub fn is_confidential(self) -> bool {
        matches!(self, AppType::Web | AppType::M2m)
    }

    fn client_id_prefix(self) -> &'static str {
        match self {
            AppType::Web => "web_",
            AppType::Spa => "spa_",
            AppType::Native => "nat_",
            AppType::M2m => "m2m_",
        }
    }
}

/// A new client ID: the type's prefix and 128 random bits, URL-safe (e.g. `spa_Qm9…`).
pub fn generate_client_id(app_type: AppType) -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    format!(
        "{}{}",
        app_type.client_id_prefix(),
        URL_SAFE_NO_PAD.encode(bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_carry_the_type_and_128_bits() {
        for t in AppType::ALL {
            let id = generate_client_id(t);
            assert!(id.starts_with(t.client_id_prefix()));
            assert_eq!(id.len(), 4 + 22);
            assert_ne!(id, generate_client_id(t));
        }
    }

    #[test]
    fn types_round_trip() {
        for t in AppType::ALL {
            assert_eq!(AppType::parse(t.as_str()).ok(), Some(t));
        }
        assert!(AppType::parse("desktop").is_err());
    }
}
