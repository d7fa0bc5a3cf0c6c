//! AWS Shield API as documented: `POST /`, AWS JSON 1.1
//! (`application/x-amz-json-1.1`, `X-Amz-Target: AWSShield_20160616.Op`),
//! Signature Version 4 verified here independently (own canonical request
//! and key derivation with hmac/sha2, not the crate's signer), request time
//! within 15 minutes, protections keyed by resource ARN, errors
//! `{"__type","message"}` (`InvalidSignatureException`,
//! `ResourceNotFoundException`, `ResourceAlreadyExistsException`,
//! `UnknownOperationException`).

use crate::server::{quick, Req, Resp, TestServer};
use hmac::{Hmac, Mac};
use levee_providers::providers::aws_shield::AwsShield;
use levee_providers::secret::Secret;
use levee_providers::sign::{unix_now, AwsCredentials};
use levee_providers::{Provider, ProviderAction, ProviderError};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const EIP1: &str = "arn:aws:ec2:us-east-1:123456789012:eip-allocation/eipalloc-0aaa";
const EIP2: &str = "arn:aws:ec2:us-east-1:123456789012:eip-allocation/eipalloc-0bbb";
const ALB: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188";

#[derive(Default)]
pub struct Shield {
    /// Protection id -> (name, ARN).
    pub protections: BTreeMap<String, (String, String)>,
    pub next: u32,
}

fn aerr(status: u16, kind: &str, msg: &str) -> Resp {
    Resp::json(status, json!({"__type": kind, "message": msg}))
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Verifies the request's SigV4 Authorization; Err(message) as AWS says it.
fn verify_sigv4(r: &Req) -> Result<(), String> {
    let auth = r
        .header("authorization")
        .ok_or("Missing Authentication Token")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("Unsupported signature algorithm")?;
    let mut parts = BTreeMap::new();
    for p in rest.split(", ") {
        let (k, v) = p.split_once('=').ok_or("Malformed Authorization header")?;
        parts.insert(k, v);
    }
    let cred = parts
        .get("Credential")
        .ok_or("Authorization lacks Credential")?;
    let signed = parts
        .get("SignedHeaders")
        .ok_or("Authorization lacks SignedHeaders")?;
    let sig = parts
        .get("Signature")
        .ok_or("Authorization lacks Signature")?;
    let c: Vec<&str> = cred.split('/').collect();
    if c.len() != 5 || c[0] != AKID {
        return Err("The security token included in the request is invalid.".into());
    }
    if c[2] != "us-east-1" || c[3] != "shield" || c[4] != "aws4_request" {
        return Err(format!(
            "Credential should be scoped to a valid region and service: {cred}"
        ));
    }
    let amz_date = r.header("x-amz-date").ok_or("Missing X-Amz-Date")?;
    if &amz_date[..8] != c[1] {
        return Err("Date in Credential scope does not match X-Amz-Date".into());
    }
    let t = time::PrimitiveDateTime::parse(
        amz_date,
        time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
    )
    .map_err(|_| "Invalid X-Amz-Date")?
    .assume_utc()
    .unix_timestamp();
    if (t - unix_now()).abs() > 15 * 60 {
        return Err("Signature expired".into());
    }
    let names: Vec<&str> = signed.split(';').collect();
    for required in ["host", "x-amz-date"] {
        if !names.contains(&required) {
            return Err(format!("{required} must be signed"));
        }
    }
    let mut canon_headers = String::new();
    for n in &names {
        let v = r.header(n).ok_or(format!("signed header {n} missing"))?;
        canon_headers.push_str(&format!("{n}:{}\n", v.trim()));
    }
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        r.method,
        r.path,
        r.query,
        canon_headers,
        signed,
        hex::encode(Sha256::digest(&r.body))
    );
    let scope = format!("{}/us-east-1/shield/aws4_request", c[1]);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{SECRET}").as_bytes(), c[1]);
    let k = hmac(&k, "us-east-1");
    let k = hmac(&k, "shield");
    let k = hmac(&k, "aws4_request");
    if hex::encode(hmac(&k, &to_sign)) != *sig {
        return Err(
            "The request signature we calculated does not match the signature you provided.".into(),
        );
    }
    Ok(())
}

pub fn handle(st: &Mutex<Shield>, r: &Req) -> Resp {
    if r.method != "POST" || r.path != "/" {
        return aerr(404, "UnknownOperationException", "Only POST / is served");
    }
    if let Err(m) = verify_sigv4(r) {
        let kind = if m.contains("token") {
            "UnrecognizedClientException"
        } else {
            "InvalidSignatureException"
        };
        return aerr(400, kind, &m);
    }
    if r.header("content-type") != Some("application/x-amz-json-1.1") {
        return aerr(
            400,
            "SerializationException",
            "Content-Type must be application/x-amz-json-1.1",
        );
    }
    let Some(op) = r
        .header("x-amz-target")
        .and_then(|t| t.strip_prefix("AWSShield_20160616."))
    else {
        return aerr(
            400,
            "UnknownOperationException",
            "Missing or foreign X-Amz-Target",
        );
    };
    let Some(b) = r.json() else {
        return aerr(400, "SerializationException", "Body is not JSON");
    };
    let mut s = st.lock().unwrap();
    match op {
        "DescribeProtection" => {
            let arn = b["ResourceArn"].as_str();
            let id = b["ProtectionId"].as_str();
            match s
                .protections
                .iter()
                .find(|(pid, (_, a))| Some(a.as_str()) == arn || Some(pid.as_str()) == id)
            {
                Some((pid, (name, a))) => Resp::json(
                    200,
                    json!({"Protection": {"Id": pid, "Name": name, "ResourceArn": a}}),
                ),
                None => aerr(
                    400,
                    "ResourceNotFoundException",
                    "The referenced protection does not exist.",
                ),
            }
        }
        "CreateProtection" => {
            let (Some(name), Some(arn)) = (b["Name"].as_str(), b["ResourceArn"].as_str()) else {
                return aerr(
                    400,
                    "InvalidParameterException",
                    "Name and ResourceArn are required",
                );
            };
            let name_ok = !name.is_empty()
                && name.len() <= 128
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " _.-".contains(c));
            if !name_ok {
                return aerr(
                    400,
                    "InvalidParameterException",
                    "Name must match [ a-zA-Z0-9_\\.\\-]*",
                );
            }
            if !arn.starts_with("arn:aws:") {
                return aerr(400, "InvalidResourceException", "Invalid resource ARN");
            }
            if s.protections.values().any(|(_, a)| a == arn) {
                return aerr(
                    400,
                    "ResourceAlreadyExistsException",
                    "The referenced protection already exists.",
                );
            }
            s.next += 1;
            let id = format!("prot-{:08}", s.next);
            s.protections.insert(id.clone(), (name.into(), arn.into()));
            Resp::json(200, json!({"ProtectionId": id}))
        }
        "DeleteProtection" => match b["ProtectionId"]
            .as_str()
            .and_then(|id| s.protections.remove(id))
        {
            Some(_) => Resp::json(200, json!({})),
            None => aerr(
                400,
                "ResourceNotFoundException",
                "The referenced protection does not exist.",
            ),
        },
        _ => aerr(400, "UnknownOperationException", "Unknown operation"),
    }
}

fn start(setup: impl FnOnce(&mut Shield)) -> (TestServer, Arc<Mutex<Shield>>) {
    let mut s = Shield::default();
    setup(&mut s);
    let st = Arc::new(Mutex::new(s));
    let st2 = st.clone();
    (TestServer::start(move |r| handle(&st2, r)), st)
}

fn shield(srv: &TestServer, secret: &str) -> AwsShield {
    let creds = AwsCredentials {
        access_key_id: AKID.into(),
        secret_access_key: Secret::new(secret),
        session_token: None,
    };
    let resources: BTreeMap<String, String> = [
        ("203.0.113.10".to_string(), EIP1.to_string()),
        ("203.0.113.11/32".to_string(), EIP2.to_string()),
        ("198.51.100.0/24".to_string(), ALB.to_string()),
    ]
    .into();
    AwsShield::new("shield", Some(&srv.base), creds, &resources, quick()).unwrap()
}

fn divert(p: &str) -> ProviderAction {
    ProviderAction::Divert {
        prefix: p.parse().unwrap(),
    }
}

fn arns(st: &Mutex<Shield>) -> Vec<String> {
    let mut v: Vec<String> = st
        .lock()
        .unwrap()
        .protections
        .values()
        .map(|(_, a)| a.clone())
        .collect();
    v.sort();
    v
}

#[test]
fn protections_are_created_for_the_resources_in_the_prefix_and_deleted() {
    let (srv, st) = start(|_| {});
    let mut p = shield(&srv, SECRET);
    let r = p.apply(&divert("203.0.113.0/24")).unwrap();
    assert_eq!(r.ids.len(), 2);
    assert_eq!(arns(&st), vec![EIP1.to_string(), EIP2.to_string()]);
    p.withdraw(&r).unwrap();
    assert!(arns(&st).is_empty());
    // A diverted address inside a mapped prefix protects that resource.
    let r = p.apply(&divert("198.51.100.77/32")).unwrap();
    assert_eq!(arns(&st), vec![ALB.to_string()]);
    assert_eq!(
        st.lock().unwrap().protections.values().next().unwrap().0,
        "levee-198.51.100.0-24"
    );
    p.withdraw(&r).unwrap();
    p.withdraw(&r).unwrap();
    assert!(arns(&st).is_empty());
}

#[test]
fn an_existing_protection_is_kept_and_signature_errors_are_clear() {
    let (srv, st) = start(|s| {
        s.protections
            .insert("prot-ops".into(), ("ops".into(), EIP1.into()));
    });
    let mut p = shield(&srv, SECRET);
    let r = p.apply(&divert("203.0.113.10/32")).unwrap();
    assert!(r.ids.is_empty());
    p.withdraw(&r).unwrap();
    assert_eq!(arns(&st), vec![EIP1.to_string()]);

    let e = shield(&srv, "wrong-secret")
        .apply(&divert("203.0.113.11/32"))
        .unwrap_err();
    match &e {
        ProviderError::Http {
            status: 400,
            code,
            message,
            ..
        } => {
            assert_eq!(code.as_deref(), Some("InvalidSignatureException"));
            assert!(
                message.contains("signature we calculated does not match"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!e.to_string().contains("wrong-secret"));
    let e = p.apply(&divert("192.0.2.0/24")).unwrap_err();
    assert!(
        e.to_string()
            .contains("no resource in `resources` lies in 192.0.2.0/24"),
        "{e}"
    );
    assert_eq!(arns(&st), vec![EIP1.to_string()]);
}
