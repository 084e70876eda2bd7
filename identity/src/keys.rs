//! Token signing keys: ES256 (P-256) generated on first start, stored in the database so every
//! replica signs with the same key, with the private part sealed (AES-256-GCM) under a master key that
//! never reaches the database. Three states are published in the JWKS: `next` (so verifiers learn it
//! before it signs), `current` (signs), `previous` (still verifies tokens it signed). Rotation moves
//! each one step and creates a new `next`.
//!
//! Each key is parsed once into a jsonwebtoken `EncodingKey` (aws-lc-rs backend) and cached.

use crate::audit::{self, Actor, Entry, Event, Target};
use crate::authz::{Action, Principal};
use crate::error::{Context, Error, Result, is_unique_violation};
use crate::time::Timestamp;
use crate::{Identity, RequestMeta};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// The key that seals private signing keys at rest. Never logged, never stored in the database.
#[derive(Clone)]
pub struct MasterKey(Arc<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// From configuration: 32 bytes, base64 (standard or URL-safe).
    pub fn from_base64(input: &str) -> Result<Self> {
        let bytes = STANDARD
            .decode(input.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(input.trim()))
            .map_err(|_| {
                Error::invalid(
                    "master_key",
                    "invalid_master_key",
                    "The master key must be 32 bytes in base64.",
                )
            })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            Error::invalid(
                "master_key",
                "invalid_master_key",
                "The master key must be 32 bytes in base64.",
            )
        })?;
        Ok(Self(Arc::new(key)))
    }

    /// Reads the key file, or creates it (mode 0600) with 32 random bytes when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        if let Ok(text) = std::fs::read_to_string(path) {
            return Self::from_base64(&text);
        }
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| Error::internal("Failed to generate a master key", std::fmt::Error))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).context("Failed to create the data directory")?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                use std::io::Write;
                file.write_all(STANDARD.encode(key).as_bytes())
                    .context("Failed to write the master key file")?;
                Ok(Self(Arc::new(key)))
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text =
                    std::fs::read_to_string(path).context("Failed to read the master key file")?;
                Self::from_base64(&text)
            }
            Err(e) => Err(Error::internal("Failed to create the master key file", e)),
        }
    }

    fn aead(&self) -> Result<LessSafeKey> {
        UnboundKey::new(&AES_256_GCM, self.0.as_ref())
            .map(LessSafeKey::new)
            .map_err(|_| Error::internal("Bad master key", std::fmt::Error))
    }

    /// nonce ‖ ciphertext ‖ tag, base64. `aad` binds the sealed bytes to their key id.
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &str) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Error::internal("Failed to generate a nonce", std::fmt::Error))?;
        let mut data = plaintext.to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut data,
            )
            .map_err(|_| Error::internal("Failed to seal a key", std::fmt::Error))?;
        let mut out = nonce.to_vec();
        out.extend(data);
        Ok(STANDARD.encode(out))
    }

    pub(crate) fn open(&self, sealed: &str, aad: &str) -> Result<Vec<u8>> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| Error::internal("A sealed key is not base64", std::fmt::Error))?;
        if bytes.len() < NONCE_LEN {
            return Err(Error::internal(
                "A sealed key is truncated",
                std::fmt::Error,
            ));
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let mut data = rest.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Error::internal("Bad nonce", std::fmt::Error))?;
        let plain = self
            .aead()?
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut data)
            .map_err(|_| {
                Error::internal(
                    "A signing key does not open with this master key (wrong PORTCULLIS_MASTER_KEY or key file?)",
                    std::fmt::Error,
                )
            })?;
        Ok(plain.to_vec())
    }
}

/// The signature algorithms Portcullis signs with: ES256 by default, RS256 for clients that need it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Alg {
    #[default]
    ES256,
    RS256,
}

impl Alg {
    pub const ALL: [Alg; 2] = [Alg::ES256, Alg::RS256];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::RS256 => "RS256",
        }
    }

    pub fn parse(input: &str) -> Result<Self> {
        match input {
            "ES256" => Ok(Alg::ES256),
            "RS256" => Ok(Alg::RS256),
            _ => Err(Error::invalid(
                "id_token_signed_response_alg",
                "invalid_alg",
                "Must be ES256 or RS256.",
            )),
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            Alg::ES256 => Algorithm::ES256,
            Alg::RS256 => Algorithm::RS256,
        }
    }
}

/// A private key parsed once (jsonwebtoken would parse the DER again for every token).
enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A signing key ready to use.
struct Loaded {
    kid: String,
    alg: Alg,
    status: String,
    jwk: Value,
    signer: Option<Signer>,
}

/// The keys in memory: what the JWKS publishes and the current signer.
#[derive(Default)]
pub(crate) struct Keyring {
    keys: Vec<Loaded>,
}

pub(crate) type SharedKeyring = Arc<RwLock<Keyring>>;

/// A key as the dashboard and CLI list it (never the private part).
#[derive(Clone, Debug, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub status: String,
    pub created_at: Timestamp,
    pub activated_at: Option<Timestamp>,
}

fn generate(master: &MasterKey, alg: Alg) -> Result<(String, Value, String)> {
    let failed = |what: &'static str| Error::internal(what, std::fmt::Error);
    let suffix = crate::secret::random_token();
    let (kid, jwk, pkcs8) = match alg {
        Alg::ES256 => {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| failed("Failed to generate a signing key"))?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .map_err(|_| failed("Failed to parse a new signing key"))?;
            // Uncompressed point: 0x04 ‖ x (32) ‖ y (32).
            let point = pair.public_key().as_ref();
            if point.len() != 65 {
                return Err(failed("Unexpected public key size"));
            }
            let kid = format!("es256-{}", &suffix[..16]);
            let jwk = json!({
                "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            });
            (kid, jwk, pkcs8.as_ref().to_vec())
        }
        Alg::RS256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| failed("Failed to generate an RSA key"))?;
            let pkcs8 = pair
                .as_der()
                .map_err(|_| failed("Failed to encode an RSA key"))?;
            let public = pair.public_key();
            let kid = format!("rs256-{}", &suffix[..16]);
            let jwk = json!({
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            });
            (kid, jwk, pkcs8.as_ref().to_vec())
        }
    };
    let sealed = master.seal(&pkcs8, &kid)?;
    Ok((kid, jwk, sealed))
}

fn parse_signer(alg: Alg, der: &[u8]) -> Result<Signer> {
    match alg {
        Alg::ES256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map(Signer::Ec)
            .map_err(|_| Error::internal("Failed to parse a signing key", std::fmt::Error)),
        Alg::RS256 => RsaKeyPair::from_pkcs8(der)
            .map(Signer::Rsa)
            .map_err(|_| Error::internal("Failed to parse a signing key", std::fmt::Error)),
    }
}

async fn insert(
    tx: &mut crate::db::Tx,
    master: &MasterKey,
    alg: Alg,
    status: &str,
    now: Timestamp,
) -> Result<String> {
    let (kid, jwk, sealed) = generate(master, alg)?;
    sqlx::query(
        "insert into signing_key (kid, alg, status, public_jwk, private_key, created_at, activated_at) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&kid)
    .bind(alg.as_str())
    .bind(status)
    .bind(jwk.to_string())
    .bind(sealed)
    .bind(now.millis())
    .bind((status == "current").then_some(now.millis()))
    .execute(&mut **tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::conflict("key_exists", "Another replica created the key first.")
        } else {
            Error::internal("Failed to store a signing key", e)
        }
    })?;
    Ok(kid)
}

/// Creates the current and next keys on first start (safe when replicas start at once), then loads
/// the keyring.
pub(crate) async fn ensure(identity: &Identity, now: Timestamp) -> Result<()> {
    let master = identity.master_key();
    for (alg, status) in Alg::ALL
        .iter()
        .flat_map(|a| [(*a, "current"), (*a, "next")])
    {
        let n: i64 =
            sqlx::query("select count(*) as n from signing_key where alg = $1 and status = $2")
                .bind(alg.as_str())
                .bind(status)
                .fetch_one(identity.db().pool())
                .await
                .and_then(|r| r.try_get("n"))
                .context("Failed to look for signing keys")?;
        if n > 0 {
            continue;
        }
        let mut tx = identity.db().begin().await?;
        match insert(&mut tx, master, alg, status, now).await {
            Ok(kid) => {
                audit::commit_with(
                    tx,
                    &Actor::System,
                    &RequestMeta::default(),
                    Entry::success(
                        Event::SigningKeyCreated,
                        Some(Target {
                            kind: "signing_key",
                            id: kid.clone(),
                        }),
                        json!({ "kid": kid, "status": status, "alg": alg.as_str() }),
                    ),
                    now,
                    "Failed to commit a signing key",
                )
                .await?;
            }
            Err(Error::Conflict {
                code: "key_exists", ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    reload(identity).await
}

/// Reads every published key and parses the private part of the current one.
pub async fn reload(identity: &Identity) -> Result<()> {
    let rows = sqlx::query(
        "select kid, alg, status, public_jwk, private_key from signing_key \
         where status in ('next', 'current', 'previous') order by created_at desc",
    )
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to read signing keys")?;
    let mut keys = Vec::new();
    for row in &rows {
        let kid: String = row.try_get("kid").context("signing_key.kid")?;
        let status: String = row.try_get("status").context("signing_key.status")?;
        let jwk: String = row.try_get("public_jwk").context("signing_key.jwk")?;
        let alg = Alg::parse(&row.try_get::<String, _>("alg").context("signing_key.alg")?)?;
        let signer = if status == "current" {
            let sealed: String = row.try_get("private_key").context("signing_key.private")?;
            let der = identity.master_key().open(&sealed, &kid)?;
            Some(parse_signer(alg, &der)?)
        } else {
            None
        };
        keys.push(Loaded {
            kid,
            alg,
            status,
            jwk: serde_json::from_str(&jwk).unwrap_or(Value::Null),
            signer,
        });
    }
    let mut ring = identity
        .keyring()
        .write()
        .map_err(|_| Error::internal("Keyring lock poisoned", std::fmt::Error))?;
    ring.keys = keys;
    Ok(())
}

/// The JSON Web Key Set: next, current and previous public keys.
pub fn jwks(identity: &Identity) -> Value {
    let keys: Vec<Value> = identity
        .keyring()
        .read()
        .map(|ring| ring.keys.iter().map(|k| k.jwk.clone()).collect())
        .unwrap_or_default();
    json!({ "keys": keys })
}

/// Signs `claims` with the current ES256 key (`typ` as given, e.g. `at+jwt` or `JWT`).
pub fn sign<T: Serialize>(identity: &Identity, typ: &str, claims: &T) -> Result<String> {
    sign_as(identity, Alg::ES256, typ, claims)
}

/// A compact JWS over `claims` with the current key of `alg`, signed with the key parsed at load.
pub fn sign_as<T: Serialize>(
    identity: &Identity,
    alg: Alg,
    typ: &str,
    claims: &T,
) -> Result<String> {
    let ring = identity
        .keyring()
        .read()
        .map_err(|_| Error::internal("Keyring lock poisoned", std::fmt::Error))?;
    let current = ring
        .keys
        .iter()
        .find(|k| k.status == "current" && k.alg == alg)
        .ok_or_else(|| Error::internal("No current signing key", std::fmt::Error))?;
    let signer = current
        .signer
        .as_ref()
        .ok_or_else(|| Error::internal("The current key was not loaded", std::fmt::Error))?;
    jws(signer, alg, &current.kid, typ, claims)
}

fn jws<T: Serialize>(
    signer: &Signer,
    alg: Alg,
    kid: &str,
    typ: &str,
    claims: &T,
) -> Result<String> {
    let header = json!({ "alg": alg.as_str(), "typ": typ, "kid": kid });
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(claims).map_err(|e| Error::internal("Failed to encode claims", e))?,
    ));
    let rng = SystemRandom::new();
    let failed = || Error::internal("Failed to sign", std::fmt::Error);
    let signature = match signer {
        Signer::Ec(pair) => pair
            .sign(&rng, out.as_bytes())
            .map_err(|_| failed())?
            .as_ref()
            .to_vec(),
        Signer::Rsa(pair) => {
            let mut sig = vec![0; pair.public_modulus_len()];
            pair.sign(&RSA_PKCS1_SHA256, &rng, out.as_bytes(), &mut sig)
                .map_err(|_| failed())?;
            sig
        }
    };
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(out)
}

/// The verification key and algorithm for `kid` from the published set.
pub fn decoding_key(identity: &Identity, kid: &str) -> Option<(DecodingKey, Algorithm)> {
    let ring = identity.keyring().read().ok()?;
    let key = ring.keys.iter().find(|k| k.kid == kid)?;
    let jwk = &key.jwk;
    let decoding = match key.alg {
        Alg::ES256 => DecodingKey::from_ec_components(jwk["x"].as_str()?, jwk["y"].as_str()?),
        Alg::RS256 => DecodingKey::from_rsa_components(jwk["n"].as_str()?, jwk["e"].as_str()?),
    }
    .ok()?;
    Some((decoding, key.alg.jwt()))
}

/// The verification key for `kid` from the stored keys, retired ones included (signatures made
/// long ago, such as audit checkpoints, are checked with the key that made them).
pub async fn stored_decoding_key(
    identity: &Identity,
    kid: &str,
) -> Result<Option<(DecodingKey, Algorithm)>> {
    let row = sqlx::query("select alg, public_jwk from signing_key where kid = $1")
        .bind(kid)
        .fetch_optional(identity.db().pool())
        .await
        .context("Failed to read a signing key")?;
    let Some(row) = row else {
        return Ok(None);
    };
    let alg = Alg::parse(&row.try_get::<String, _>("alg").context("signing_key.alg")?)?;
    let jwk: Value = serde_json::from_str(
        &row.try_get::<String, _>("public_jwk")
            .context("signing_key.public_jwk")?,
    )
    .map_err(|e| Error::internal("A stored public key is malformed", e))?;
    let decoding = match alg {
        Alg::ES256 => DecodingKey::from_ec_components(
            jwk["x"].as_str().unwrap_or_default(),
            jwk["y"].as_str().unwrap_or_default(),
        ),
        Alg::RS256 => DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap_or_default(),
            jwk["e"].as_str().unwrap_or_default(),
        ),
    };
    Ok(decoding.ok().map(|d| (d, alg.jwt())))
}

/// Every key but the retired ones, newest first.
pub async fn list(identity: &Identity, principal: &Principal) -> Result<Vec<KeyInfo>> {
    principal.authorize(Action::ViewSettings)?;
    let rows = sqlx::query(
        "select kid, alg, status, created_at, activated_at from signing_key \
         where status <> 'retired' order by created_at desc",
    )
    .fetch_all(identity.db().pool())
    .await
    .context("Failed to list signing keys")?;
    rows.iter()
        .map(|r| {
            Ok(KeyInfo {
                kid: r.try_get("kid").context("signing_key.kid")?,
                alg: r.try_get("alg").context("signing_key.alg")?,
                status: r.try_get("status").context("signing_key.status")?,
                created_at: Timestamp::from_millis(
                    r.try_get("created_at").context("signing_key.created_at")?,
                ),
                activated_at: r
                    .try_get::<Option<i64>, _>("activated_at")
                    .context("signing_key.activated_at")?
                    .map(Timestamp::from_millis),
            })
        })
        .collect()
}

/// Rotation: previous → retired, current → previous, next → current, and a new next. Owners only
/// (or the CLI as the system actor). Other replicas pick the change up on their next reload.
pub async fn rotate(
    identity: &Identity,
    actor: &Actor,
    principal: Option<&Principal>,
    meta: &RequestMeta,
    now: Timestamp,
) -> Result<String> {
    if let Some(p) = principal {
        p.authorize(Action::ManageSettings)?;
    }
    let mut tx = identity.db().begin().await?;
    // Row locks first, so two rotations run one after the other.
    sqlx::query(
        "update signing_key set status = status where status in ('next', 'current', 'previous')",
    )
    .execute(&mut *tx)
    .await
    .context("Failed to lock signing keys")?;
    let steps = [
        ("previous", "retired"),
        ("current", "previous"),
        ("next", "current"),
    ];
    for (from, to) in steps {
        sqlx::query(
            "update signing_key set status = $1, \
             activated_at = case when $1 = 'current' then $2 else activated_at end, \
             retired_at = case when $1 = 'retired' then $2 else retired_at end \
             where status = $3",
        )
        .bind(to)
        .bind(now.millis())
        .bind(from)
        .execute(&mut *tx)
        .await
        .context("Failed to rotate signing keys")?;
    }
    let mut next = String::new();
    for alg in Alg::ALL {
        let kid = insert(&mut tx, identity.master_key(), alg, "next", now).await?;
        if alg == Alg::ES256 {
            next = kid;
        }
    }
    let current: String =
        sqlx::query("select kid from signing_key where alg = 'ES256' and status = 'current'")
            .fetch_one(&mut *tx)
            .await
            .and_then(|r| r.try_get("kid"))
            .context("Failed to read the current key")?;
    audit::commit_with(
        tx,
        actor,
        meta,
        Entry::success(
            Event::SigningKeyRotated,
            Some(Target {
                kind: "signing_key",
                id: current.clone(),
            }),
            json!({ "current": current, "next": next }),
        ),
        now,
        "Failed to commit a key rotation",
    )
    .await?;
    reload(identity).await?;
    Ok(current)
}

/// A detached signature over `message` with the current RS256 key: RSASSA-PKCS1-v1_5 with SHA-256,
/// which `openssl dgst -sha256 -verify key.pem -signature sig` checks. Returns the key id (it is
/// in the JWKS), the raw signature, and the public key as PEM (SubjectPublicKeyInfo, built from
/// the published JWK).
pub fn sign_detached(identity: &Identity, message: &[u8]) -> Result<(String, Vec<u8>, String)> {
    let ring = identity
        .keyring()
        .read()
        .map_err(|_| Error::internal("Keyring lock poisoned", std::fmt::Error))?;
    let current = ring
        .keys
        .iter()
        .find(|k| k.status == "current" && k.alg == Alg::RS256)
        .ok_or_else(|| Error::internal("No current RS256 key", std::fmt::Error))?;
    let Some(Signer::Rsa(pair)) = &current.signer else {
        return Err(Error::internal(
            "The current key was not loaded",
            std::fmt::Error,
        ));
    };
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
        .map_err(|_| Error::internal("Failed to sign", std::fmt::Error))?;
    let part = |k: &str| {
        current.jwk[k]
            .as_str()
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .ok_or_else(|| Error::internal("A published key is malformed", std::fmt::Error))
    };
    let pem = rsa_spki_pem(&part("n")?, &part("e")?);
    Ok((current.kid.clone(), sig, pem))
}

/// DER: SubjectPublicKeyInfo { rsaEncryption, RSAPublicKey { n, e } }, as PEM.
fn rsa_spki_pem(n: &[u8], e: &[u8]) -> String {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }
    let integer = |v: &[u8]| {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let mut body = Vec::with_capacity(v.len() + 1);
        if v.first().is_none_or(|b| b & 0x80 != 0) {
            body.push(0);
        }
        body.extend(v);
        tlv(0x02, &body)
    };
    let rsa_key = tlv(0x30, &[integer(n), integer(e)].concat());
    // OID 1.2.840.113549.1.1.1 (rsaEncryption) and NULL parameters.
    let algorithm = tlv(
        0x30,
        &[
            tlv(
                0x06,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            ),
            vec![0x05, 0x00],
        ]
        .concat(),
    );
    let bits = tlv(0x03, &[vec![0x00], rsa_key].concat());
    let spki = tlv(0x30, &[algorithm, bits].concat());
    let b64 = STANDARD.encode(spki);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_binds_the_key_id() {
        let master = MasterKey::from_base64(&STANDARD.encode([7u8; 32])).expect("key");
        let sealed = master.seal(b"private", "kid-1").expect("seal");
        assert!(!sealed.contains("private"));
        assert_eq!(master.open(&sealed, "kid-1").expect("open"), b"private");
        assert!(master.open(&sealed, "kid-2").is_err(), "bound to its kid");
        let other = MasterKey::from_base64(&STANDARD.encode([8u8; 32])).expect("key");
        assert!(
            other.open(&sealed, "kid-1").is_err(),
            "needs the same master key"
        );
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        assert_eq!(format!("{master:?}"), "MasterKey(…)");
    }

    #[test]
    fn generated_keys_sign_and_verify_with_a_standard_library() {
        let master = MasterKey::from_base64(&STANDARD.encode([1u8; 32])).expect("key");
        for alg in Alg::ALL {
            let (kid, jwk, sealed) = generate(&master, alg).expect("generate");
            let der = master.open(&sealed, &kid).expect("open");
            let signer = parse_signer(alg, &der).expect("parse");
            let token = jws(
                &signer,
                alg,
                &kid,
                "JWT",
                &json!({"sub": "u1", "exp": 4_000_000_000u64}),
            )
            .expect("sign");
            let key = match alg {
                Alg::ES256 => DecodingKey::from_ec_components(
                    jwk["x"].as_str().expect("x"),
                    jwk["y"].as_str().expect("y"),
                ),
                Alg::RS256 => DecodingKey::from_rsa_components(
                    jwk["n"].as_str().expect("n"),
                    jwk["e"].as_str().expect("e"),
                ),
            }
            .expect("jwk");
            let data = jsonwebtoken::decode::<Value>(
                &token,
                &key,
                &jsonwebtoken::Validation::new(alg.jwt()),
            )
            .expect("verify");
            assert_eq!(data.claims["sub"], "u1");
            assert_eq!(data.header.kid.as_deref(), Some(kid.as_str()));
            assert_eq!(jwk["kid"], kid);
            assert_eq!(jwk["alg"], alg.as_str());
        }
    }
}
