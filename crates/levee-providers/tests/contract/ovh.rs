//! OVHcloud API v1 as documented: `/auth/time` unauthenticated, every other
//! call signed (`$1$` + SHA1 over AS+CK+METHOD+URL+BODY+TS, recomputed here
//! independently with the sha1 crate), keys and timestamp checked (the
//! server's clock runs 1000 s ahead, so a client that does not use
//! `/auth/time` fails), IP blocks and permanent mitigation per address.
//! Errors in OVH's shape: `{"errorCode","httpCode","message"}`.

use crate::server::{quick, Req, Resp, TestServer};
use levee_providers::providers::ovh::{OvhKeys, OvhVac};
use levee_providers::secret::Secret;
use levee_providers::sign::unix_now;
use levee_providers::{Provider, ProviderAction, ProviderError};
use serde_json::json;
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const AK: &str = "7kbG7Bk7S9Nt7ZSV";
const AS: &str = "EXEgWIz07P0HYwtQDs7cNIqCiQaWSuHF";
const CK: &str = "MtSwSrPpNjqfVSmJhLbPyr2i45lSwPU1";
const SKEW: i64 = 1000;

#[derive(Default)]
pub struct Ovh {
    pub blocks: Vec<String>,
    /// (block, address) -> permanent.
    pub mitigations: BTreeMap<(String, String), bool>,
}

fn ovh_err(status: u16, code: &str, msg: &str) -> Resp {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    Resp::json(
        status,
        json!({"errorCode": code, "httpCode": format!("{status} {reason}"), "message": msg}),
    )
}

fn expected_signature(r: &Req, ts: &str) -> String {
    let mut h = Sha1::new();
    h.update(format!("{AS}+{CK}+{}+{}+", r.method, r.full_url()).as_bytes());
    h.update(&r.body);
    h.update(format!("+{ts}").as_bytes());
    format!("$1${:x}", h.finalize())
}

pub fn handle(st: &Mutex<Ovh>, r: &Req) -> Resp {
    let Some(path) = r.path.strip_prefix("/1.0") else {
        return ovh_err(404, "NOT_FOUND", "Got an invalid (or empty) URL");
    };
    if r.is("GET", "/1.0/auth/time") {
        return Resp::json(200, json!(unix_now() + SKEW));
    }
    if r.header("x-ovh-application") != Some(AK) {
        return ovh_err(403, "INVALID_KEY", "This application key is invalid");
    }
    if r.header("x-ovh-consumer") != Some(CK) {
        return ovh_err(403, "INVALID_CREDENTIAL", "This credential does not exist");
    }
    let ts = r.header("x-ovh-timestamp").unwrap_or("");
    match ts.parse::<i64>() {
        Ok(t) if (t - (unix_now() + SKEW)).abs() <= 30 => {}
        _ => return ovh_err(400, "QUERY_TIME_OUT", "Query out of time"),
    }
    if r.header("x-ovh-signature") != Some(expected_signature(r, ts).as_str()) {
        return ovh_err(400, "INVALID_SIGNATURE", "Invalid signature");
    }
    if r.method == "POST" && r.header("content-type") != Some("application/json") {
        return ovh_err(400, "BAD_REQUEST", "Invalid content type");
    }
    let mut s = st.lock().unwrap();
    let seg: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|x| x.replace("%2F", "/"))
        .collect();
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    match (r.method.as_str(), seg.as_slice()) {
        ("GET", ["ip"]) => Resp::json(200, json!(s.blocks)),
        (_, ["ip", block, ..]) if !s.blocks.iter().any(|b| b == block) => ovh_err(
            404,
            "NOT_FOUND",
            &format!("The requested object (ip = {block}) does not exist"),
        ),
        ("GET", ["ip", block, "mitigation", ip]) => {
            match s.mitigations.get(&(block.to_string(), ip.to_string())) {
                Some(p) => Resp::json(
                    200,
                    json!({"ipOnMitigation": ip, "permanent": p, "auto": !p, "state": "ok"}),
                ),
                None => ovh_err(
                    404,
                    "NOT_FOUND",
                    &format!("The requested object (ipOnMitigation = {ip}) does not exist"),
                ),
            }
        }
        ("POST", ["ip", block, "mitigation"]) => {
            let Some(ip) = r
                .json()
                .and_then(|b| b["ipOnMitigation"].as_str().map(str::to_string))
            else {
                return ovh_err(400, "BAD_REQUEST", "[ipOnMitigation] Property is mandatory");
            };
            let inside = ip.parse::<std::net::Ipv4Addr>().is_ok_and(|a| {
                block
                    .parse::<ipnet::Ipv4Net>()
                    .is_ok_and(|n| n.contains(&a))
            });
            if !inside {
                return ovh_err(400, "BAD_REQUEST", &format!("{ip} is not in {block}"));
            }
            let key = (block.to_string(), ip.clone());
            if s.mitigations.contains_key(&key) {
                return ovh_err(409, "CONFLICT", "This IP is already under mitigation");
            }
            s.mitigations.insert(key, true);
            Resp::json(
                200,
                json!({"ipOnMitigation": ip, "permanent": true, "auto": false, "state": "creationPending"}),
            )
        }
        ("DELETE", ["ip", block, "mitigation", ip]) => {
            match s.mitigations.remove(&(block.to_string(), ip.to_string())) {
                Some(_) => Resp::json(200, json!(null)),
                None => ovh_err(
                    404,
                    "NOT_FOUND",
                    &format!("The requested object (ipOnMitigation = {ip}) does not exist"),
                ),
            }
        }
        _ => ovh_err(404, "NOT_FOUND", "Got an invalid (or empty) URL"),
    }
}

fn start(setup: impl FnOnce(&mut Ovh)) -> (TestServer, Arc<Mutex<Ovh>>) {
    let mut o = Ovh {
        blocks: vec!["203.0.113.0/24".into(), "198.51.100.8/29".into()],
        ..Default::default()
    };
    setup(&mut o);
    let st = Arc::new(Mutex::new(o));
    let st2 = st.clone();
    (TestServer::start(move |r| handle(&st2, r)), st)
}

fn vac(srv: &TestServer, secret: &str) -> OvhVac {
    let keys = OvhKeys {
        application_key: AK.into(),
        application_secret: Secret::new(secret),
        consumer_key: Secret::new(CK),
    };
    OvhVac::new("ovh", Some(&format!("{}/1.0", srv.base)), keys, 16, quick()).unwrap()
}

fn divert(p: &str) -> ProviderAction {
    ProviderAction::Divert {
        prefix: p.parse().unwrap(),
    }
}

fn on(st: &Mutex<Ovh>) -> Vec<String> {
    st.lock()
        .unwrap()
        .mitigations
        .keys()
        .map(|(_, ip)| ip.clone())
        .collect()
}

#[test]
fn forced_mitigation_is_set_per_address_and_lifted() {
    let (srv, st) = start(|_| {});
    let mut p = vac(&srv, AS);
    let r = p.apply(&divert("203.0.113.10/32")).unwrap();
    assert_eq!(r.ids, vec!["203.0.113.0/24", "203.0.113.10"]);
    assert_eq!(on(&st), vec!["203.0.113.10"]);
    p.withdraw(&r).unwrap();
    assert!(on(&st).is_empty());

    // A /30 in the /29 block: all four addresses.
    let r = p.apply(&divert("198.51.100.12/30")).unwrap();
    assert_eq!(r.ids[0], "198.51.100.8/29");
    assert_eq!(on(&st).len(), 4);
    p.withdraw(&r).unwrap();
    assert!(on(&st).is_empty());
    // The server time was fetched once and reused.
    assert_eq!(
        srv.calls()
            .iter()
            .filter(|c| c.ends_with("/auth/time"))
            .count(),
        1
    );
}

#[test]
fn an_address_already_under_permanent_mitigation_is_left_alone() {
    let (srv, st) = start(|o| {
        o.mitigations
            .insert(("203.0.113.0/24".into(), "203.0.113.10".into()), true);
    });
    let mut p = vac(&srv, AS);
    let r = p.apply(&divert("203.0.113.10/32")).unwrap();
    assert_eq!(r.ids, vec!["203.0.113.0/24"]);
    p.withdraw(&r).unwrap();
    assert_eq!(on(&st), vec!["203.0.113.10"]);
}

#[test]
fn bad_signatures_and_out_of_scope_prefixes_are_clear_errors() {
    let (srv, st) = start(|_| {});
    let mut bad = vac(&srv, "not-the-secret");
    match bad.apply(&divert("203.0.113.10/32")).unwrap_err() {
        ProviderError::Http {
            status: 400,
            code,
            message,
            ..
        } => {
            assert_eq!(code.as_deref(), Some("INVALID_SIGNATURE"));
            assert_eq!(message, "Invalid signature");
        }
        other => panic!("{other:?}"),
    }
    let mut p = vac(&srv, AS);
    let e = p.apply(&divert("203.0.113.0/24")).unwrap_err();
    assert!(
        e.to_string()
            .contains("256 addresses, above max_addresses = 16"),
        "{e}"
    );
    let e = p.apply(&divert("192.0.2.1/32")).unwrap_err();
    assert!(
        e.to_string()
            .contains("no IP block of this OVHcloud account holds 192.0.2.1/32"),
        "{e}"
    );
    let e = p.apply(&divert("2001:db8::1/128")).unwrap_err();
    assert!(matches!(e, ProviderError::Unsupported { .. }), "{e:?}");
    assert!(on(&st).is_empty());
}
