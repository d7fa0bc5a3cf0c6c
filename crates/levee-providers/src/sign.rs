//! Request signatures, as pure functions of their inputs (the time comes in
//! as an argument), so each is checked against published known answers:
//!
//! - AWS Signature Version 4
//!   (<https://docs.aws.amazon.com/general/latest/gr/sigv4-signed-request-examples.html>,
//!   test suite <https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html>);
//! - OVHcloud's `$1$` signature
//!   (<https://docs.ovh.com/gb/en/customer/first-steps-with-ovh-api/>):
//!   `"$1$" + SHA1_HEX(AS+"+"+CK+"+"+METHOD+"+"+QUERY+"+"+BODY+"+"+TSTAMP)`;
//! - Levee's webhook signature: HMAC-SHA256 over `"<timestamp>.<body>"`.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The webhook signature: `v1=` + hex HMAC-SHA256(secret, `"{ts}.{body}"`).
pub fn webhook_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut msg = format!("{timestamp}.").into_bytes();
    msg.extend_from_slice(body);
    format!("v1={}", hex::encode(hmac_sha256(secret, &msg)))
}

/// Constant-time check of a webhook signature (for receivers, and for the
/// test server).
pub fn webhook_verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(hex_sig) = signature.strip_prefix("v1=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_sig) else {
        return false;
    };
    let mut msg = format!("{timestamp}.").into_bytes();
    msg.extend_from_slice(body);
    let mut m = HmacSha256::new_from_slice(secret).expect("any key length");
    m.update(&msg);
    m.verify_slice(&given).is_ok()
}

/// OVH's request signature over the full URL (with query string).
pub fn ovh_signature(
    app_secret: &str,
    consumer_key: &str,
    method: &str,
    url: &str,
    body: &[u8],
    timestamp: i64,
) -> String {
    let mut h = Sha1::new();
    h.update(app_secret.as_bytes());
    h.update(b"+");
    h.update(consumer_key.as_bytes());
    h.update(b"+");
    h.update(method.as_bytes());
    h.update(b"+");
    h.update(url.as_bytes());
    h.update(b"+");
    h.update(body);
    h.update(b"+");
    h.update(timestamp.to_string().as_bytes());
    format!("$1${}", hex::encode(h.finalize()))
}

/// AWS credentials for SigV4.
#[derive(Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: crate::secret::Secret,
    /// For temporary credentials (STS).
    pub session_token: Option<crate::secret::Secret>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// One request as SigV4 sees it.
#[derive(Debug, Clone)]
pub struct SigV4Request<'a> {
    pub method: &'a str,
    /// The URI-encoded absolute path (`/` for Shield's JSON API).
    pub path: &'a str,
    /// The query string, `a=1&b=2` (URI-encoded), or empty.
    pub query: &'a str,
    /// Headers to sign, including `host` and `x-amz-date`.
    pub headers: &'a [(String, String)],
    pub payload: &'a [u8],
}

/// The canonical request (task 1 of the SigV4 documentation).
pub fn sigv4_canonical_request(req: &SigV4Request<'_>) -> (String, String) {
    let mut query: Vec<(&str, &str)> = req
        .query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    query.sort();
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        req.path,
        query.join("&"),
        canonical_headers,
        signed,
        sha256_hex(req.payload)
    );
    (canonical, signed)
}

/// The SigV4 signing key (task 3).
pub fn sigv4_signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// The `Authorization` header value for `req` signed at `amz_date`
/// (`YYYYMMDDTHHMMSSZ`).
pub fn sigv4_authorization(
    creds: &AwsCredentials,
    region: &str,
    service: &str,
    amz_date: &str,
    req: &SigV4Request<'_>,
) -> String {
    let date = &amz_date[..8.min(amz_date.len())];
    let (canonical, signed) = sigv4_canonical_request(req);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = sigv4_signing_key(creds.secret_access_key.expose(), date, region, service);
    let signature = hex::encode(hmac_sha256(&key, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        creds.access_key_id
    )
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time.
pub fn amz_date(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn example_creds() -> AwsCredentials {
        // The example key pair of the AWS documentation.
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        }
    }

    #[test]
    fn sigv4_signing_key_matches_the_documented_example() {
        // "Examples of how to derive a signing key for Signature Version 4".
        let k = sigv4_signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(k),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn sigv4_iam_list_users_example() {
        // The worked example of the SigV4 documentation (tasks 1-4):
        // GET https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08
        let headers = vec![
            (
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
            ("Host".to_string(), "iam.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
        ];
        let req = SigV4Request {
            method: "GET",
            path: "/",
            query: "Version=2010-05-08&Action=ListUsers",
            headers: &headers,
            payload: b"",
        };
        let (canonical, signed) = sigv4_canonical_request(&req);
        assert_eq!(signed, "content-type;host;x-amz-date");
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let auth = sigv4_authorization(
            &example_creds(),
            "us-east-1",
            "iam",
            "20150830T123600Z",
            &req,
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn sigv4_test_suite_get_vanilla() {
        // aws-sig-v4-test-suite/get-vanilla.
        let headers = vec![
            ("Host".to_string(), "example.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
        ];
        let req = SigV4Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            payload: b"",
        };
        let auth = sigv4_authorization(
            &example_creds(),
            "us-east-1",
            "service",
            "20150830T123600Z",
            &req,
        );
        assert!(
            auth.ends_with(
                "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            ),
            "{auth}"
        );
    }

    #[test]
    fn amz_date_formats_utc() {
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
    }

    #[test]
    fn ovh_signature_is_sha1_of_the_plus_joined_fields() {
        // Independent computation: sha1("AS+CK+GET+https://eu.api.ovh.com/1.0/me++1366560945")
        // with `printf %s ... | sha1sum`.
        let s = ovh_signature(
            "AS",
            "CK",
            "GET",
            "https://eu.api.ovh.com/1.0/me",
            b"",
            1366560945,
        );
        assert_eq!(s, "$1$302a5fe8c63712cdc1af50a6ff18f5b370d7b4c1");
    }

    #[test]
    fn webhook_signatures_verify_and_reject_tampering() {
        let sig = webhook_signature(b"k", 1700000000, b"{\"a\":1}");
        assert!(webhook_verify(b"k", 1700000000, b"{\"a\":1}", &sig));
        assert!(!webhook_verify(b"k", 1700000001, b"{\"a\":1}", &sig));
        assert!(!webhook_verify(b"k", 1700000000, b"{\"a\":2}", &sig));
        assert!(!webhook_verify(b"other", 1700000000, b"{\"a\":1}", &sig));
        assert!(!webhook_verify(b"k", 1700000000, b"{\"a\":1}", "v1=zz"));
    }
}
