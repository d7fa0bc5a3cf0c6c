//! SHA-256 fingerprints of the server's TLS certificate: printed by the server,
//! pinned by the agent at enrollment.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// SHA-256 of a certificate's DER encoding. Displayed as `sha256:` and 64
/// lowercase hex digits; parsed also from the colon-separated upper-case form
/// `openssl x509 -fingerprint -sha256` prints.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of_der(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a SHA-256 fingerprint: expected `sha256:` and 64 hex digits (colons allowed), as `levee server` prints it")]
pub struct FingerprintError(pub String);

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let body = t
            .strip_prefix("sha256:")
            .or_else(|| t.strip_prefix("SHA256:"))
            .or_else(|| t.strip_prefix("sha256 Fingerprint="))
            .unwrap_or(t);
        let hexdigits: String = body.chars().filter(|c| *c != ':').collect();
        let mut out = [0u8; 32];
        hex::decode_to_slice(&hexdigits, &mut out).map_err(|_| FingerprintError(s.to_string()))?;
        Ok(Fingerprint(out))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_digest() {
        // sha256("abc")
        let f = Fingerprint::of_der(b"abc");
        assert_eq!(
            f.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn openssl_form_parses() {
        let f = Fingerprint::of_der(b"abc");
        let openssl = "sha256 Fingerprint=BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD";
        assert_eq!(openssl.parse::<Fingerprint>().unwrap(), f);
    }

    #[test]
    fn garbage_is_an_error_naming_the_input() {
        let e = "sha256:xyz".parse::<Fingerprint>().unwrap_err();
        assert!(e.to_string().contains("sha256:xyz"));
        assert!("sha256:abcd".parse::<Fingerprint>().is_err());
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(bytes in proptest::array::uniform32(any::<u8>())) {
            let f = Fingerprint(bytes);
            prop_assert_eq!(f.to_string().parse::<Fingerprint>().unwrap(), f);
        }

        #[test]
        fn parse_never_panics(s in ".{0,100}") {
            let _ = s.parse::<Fingerprint>();
        }
    }
}
