//! Delivers OpenID Connect Back-Channel Logout tokens. Ending a session queues one token per
//! application (in the same transaction, see `identity::logout`); this task claims due deliveries,
//! POSTs `logout_token=…` to each application's back-channel URI and reports the outcome, which is
//! retried with backoff and audited.
//!
//! Outbound requests are guarded: no redirects are followed, and private, loopback, link-local and
//! other non-public addresses are refused — checked on the addresses the name resolves to, which are
//! the ones connected to (no DNS rebinding) — unless `PORTCULLIS_ALLOW_PRIVATE_OUTBOUND` is set
//! (tests and local development).

use identity::logout::{self, Due};
use identity::{Identity, Timestamp};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Polls for due deliveries every `interval` until the runtime stops.
pub fn spawn(identity: Identity, allow_private: bool, interval: Duration) {
    tokio::spawn(async move {
        let client = match client(allow_private, "Portcullis back-channel logout") {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "back-channel logout client could not start");
                return;
            }
        };
        loop {
            if let Err(e) = round(&identity, &client, allow_private).await {
                tracing::warn!(error = %app::ssr::error_chain(&e), "back-channel logout round failed");
            }
            tokio::time::sleep(interval).await;
        }
    });
}

/// An HTTP client for outbound calls: no redirects, no proxy, short timeouts, and a resolver that
/// refuses non-public addresses unless `allow_private`.
pub(crate) fn client(allow_private: bool, user_agent: &str) -> reqwest::Result<reqwest::Client> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the name itself, past the address guard.
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(3))
        .user_agent(user_agent)
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .build()
}

async fn round(
    identity: &Identity,
    client: &reqwest::Client,
    allow_private: bool,
) -> identity::Result<()> {
    for due in logout::claim_due(identity, Timestamp::now(), 20).await? {
        let outcome = send(client, &due, allow_private).await;
        if let Err(e) = &outcome {
            tracing::warn!(delivery = due.id, error = e, "back-channel logout failed");
        }
        logout::report(identity, &due, outcome, Timestamp::now()).await?;
    }
    Ok(())
}

async fn send(client: &reqwest::Client, due: &Due, allow_private: bool) -> Result<u16, String> {
    let url = guarded_url(&due.url, allow_private)?;
    let res = client
        .post(url)
        .form(&[("logout_token", due.token.as_str())])
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = res.status();
    if status.is_success() {
        Ok(status.as_u16())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

/// Parses an outbound URL and checks an IP-literal host (those never reach the resolver).
pub(crate) fn guarded_url(input: &str, allow_private: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(input).map_err(|_| "invalid URL".to_owned())?;
    match url.host() {
        Some(url::Host::Ipv4(ip)) => check(IpAddr::V4(ip), allow_private)?,
        Some(url::Host::Ipv6(ip)) => check(IpAddr::V6(ip), allow_private)?,
        _ => {}
    }
    Ok(url)
}

/// A short reason without the URL's query or anything the receiver sent.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if let Some(blocked) = s.downcast_ref::<Blocked>() {
            return blocked.to_string();
        }
        source = s.source();
    }
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    }
}

#[derive(Debug)]
struct Blocked(IpAddr);

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused a non-public address ({})", self.0)
    }
}

impl std::error::Error for Blocked {}

fn check(ip: IpAddr, allow_private: bool) -> Result<(), String> {
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(Blocked(ip).to_string())
    }
}

/// True for addresses on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // shared address space (CGNAT)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (18..20).contains(&o[1])) // benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || s[0] == 0x2002 // 6to4 (embeds an IPv4 address)
                || (s[0] == 0x2001 && s[1] == 0) // Teredo
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only
                || s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible ::a.b.c.d
                || (s[0] == 0x0064 && s[1] == 0xff9b)) // NAT64 (may reach IPv4 private space)
        }
    }
}

struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                let ip = addrs
                    .first()
                    .map(|a| a.ip())
                    .unwrap_or(IpAddr::from([0, 0, 0, 0]));
                return Err(Box::new(Blocked(ip)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
            "2002:7f00:1::",
            "2001::1",
            "fec0::1",
        ] {
            assert!(
                !is_public(private.parse().expect("ip")),
                "{private} must be refused"
            );
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().expect("ip")), "{public} is public");
        }
        assert!(
            check("127.0.0.1".parse().expect("ip"), true).is_ok(),
            "the switch allows it"
        );
    }
}
