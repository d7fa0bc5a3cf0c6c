//! Credentials: making and hashing secrets (API tokens, enrollment tokens,
//! agent keys), passwords, the per-replica identity cache and the rate
//! limiter for failed authentications and logins.
//!
//! Secrets are 256 random bits, shown once, stored as SHA-256: a hash of a
//! high-entropy secret cannot be brute-forced, so no slow hash is needed
//! (passwords, chosen by people, get argon2).

use crate::store::auth::{AgentIdentity, UserIdentity};
use base64::Engine;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Prefixes say what a secret is when one turns up in a log or a ticket.
pub const API_TOKEN_PREFIX: &str = "lvt";
pub const ENROLL_TOKEN_PREFIX: &str = "lve";
pub const AGENT_KEY_PREFIX: &str = "lva";

/// A new secret: `<prefix>_` and 43 base64url characters (256 bits).
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What the database keeps of a secret.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The argon2id PHC string of a password.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&{
        let mut s = [0u8; 16];
        rand::rng().fill_bytes(&mut s);
        s
    })
    .map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc)
        .map(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A verified credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    User(UserIdentity),
    Agent(AgentIdentity),
}

/// Recently verified credentials by hash, so 5,000 agents a second do not
/// cost 5,000 lookups. Entries live at most `ttl`: a key revoked on another
/// replica stops working within it; on this replica revocation evicts at once.
pub struct IdentityCache {
    /// Identity and expiry.
    map: Mutex<HashMap<[u8; 32], (Identity, Instant)>>,
    ttl: Duration,
    max: usize,
}

impl IdentityCache {
    pub fn new(ttl: Duration, max: usize) -> Self {
        IdentityCache {
            map: Mutex::new(HashMap::new()),
            ttl,
            max,
        }
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<Identity> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(hash)
            .filter(|(_, expires)| Instant::now() < *expires)
            .map(|(id, _)| id.clone())
    }

    /// Caches `id` for between half and all of the TTL: entries made in the
    /// same second (every agent after a restart) must not all expire in the
    /// same second too.
    pub fn put(&self, hash: [u8; 32], id: Identity) {
        let life = self.ttl.mul_f64(0.5 + 0.5 * rand::random::<f64>());
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max {
            let now = Instant::now();
            map.retain(|_, (_, expires)| now < *expires);
            if map.len() >= self.max {
                map.clear();
            }
        }
        map.insert(hash, (id, Instant::now() + life));
    }

    pub fn evict(&self, hash: &[u8]) {
        if let Ok(h) = <[u8; 32]>::try_from(hash) {
            self.map
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&h);
        }
    }
}

/// Per-client-address budgets for failed authentications and for logins.
pub struct Limiter {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    logins: DefaultKeyedRateLimiter<IpAddr>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl Limiter {
    pub fn new(failures_per_minute: u32, logins_per_minute: u32) -> Self {
        Limiter {
            failures: RateLimiter::keyed(per_minute(failures_per_minute)),
            logins: RateLimiter::keyed(per_minute(logins_per_minute)),
        }
    }

    /// Spends one failed authentication of `ip`; `Err(wait)` once the budget is gone.
    pub fn failure(&self, ip: IpAddr) -> Result<(), Duration> {
        self.failures.check_key(&ip).map_err(|n| {
            n.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
        })
    }

    /// Spends one login attempt of `ip`.
    pub fn login(&self, ip: IpAddr) -> Result<(), Duration> {
        self.logins.check_key(&ip).map_err(|n| {
            n.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
        })
    }

    /// Forgets idle clients (called by the jobs so the maps stay small).
    pub fn shrink(&self) {
        self.failures.retain_recent();
        self.logins.retain_recent();
        self.failures.shrink_to_fit();
        self.logins.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hash_stably() {
        let a = new_secret(API_TOKEN_PREFIX);
        let b = new_secret(API_TOKEN_PREFIX);
        assert!(a.starts_with("lvt_") && a.len() == 4 + 43, "{a}");
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_ne!(hash_secret(&a), hash_secret(&b));
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsE", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn limiter_refuses_after_the_budget() {
        let l = Limiter::new(3, 1);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.failure(ip).is_ok());
        }
        let wait = l.failure(ip).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(l.failure(other).is_ok(), "budgets are per address");
        assert!(l.login(ip).is_ok());
        assert!(l.login(ip).is_err());
    }

    #[test]
    fn cache_expires_and_evicts() {
        let c = IdentityCache::new(Duration::from_millis(50), 2);
        // Lifetimes are jittered within [ttl/2, ttl]: after `ttl` all are gone.
        let id = Identity::Agent(AgentIdentity {
            tenant_id: 1,
            node_id: 2,
            node: "n".into(),
        });
        c.put([1; 32], id.clone());
        assert_eq!(c.get(&[1; 32]), Some(id.clone()));
        c.evict(&[1; 32]);
        assert_eq!(c.get(&[1; 32]), None);
        c.put([2; 32], id);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get(&[2; 32]), None);
    }
}
