//! Cloudflare API v4 as documented: bearer API token, the
//! `{success, errors[{code,message}], messages, result}` envelope, BYOIP
//! prefixes with BGP prefixes and on-demand advertisement, zone IP Access
//! rules with their target/value rules. Error codes as Cloudflare sends
//! them (9106 missing auth, 9109 invalid token, 7003 unknown object,
//! 10009 duplicate access rule, 971 throttled).

use crate::server::{quick, Req, Resp, TestServer};
use levee_providers::providers::cloudflare_mt::MagicTransit;
use levee_providers::providers::cloudflare_waf::{CloudflareWaf, Scope};
use levee_providers::secret::Secret;
use levee_providers::{Provider, ProviderAction, ProviderError};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const TOKEN: &str = "cf-token-123";
const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const ZONE: &str = "9a7806061c88ada191ed06f989cc3dac";

#[derive(Clone, Debug)]
pub struct Bgp {
    pub id: String,
    pub cidr: String,
    pub advertised: bool,
    pub on_demand_enabled: bool,
}

#[derive(Default)]
pub struct Cf {
    /// IP prefix id -> (cidr, BGP prefixes).
    pub prefixes: BTreeMap<String, (String, Vec<Bgp>)>,
    /// Rule id -> (target, value, mode, notes).
    pub rules: BTreeMap<String, (String, String, String, String)>,
    pub next: u32,
    /// Fail the n-th access-rule POST (1-based) with a 500.
    pub fail_post: Option<u32>,
    pub posts: u32,
    pub throttle: bool,
}

fn cf_err(status: u16, code: u32, msg: &str) -> Resp {
    Resp::json(
        status,
        json!({"success": false, "errors": [{"code": code, "message": msg}], "messages": [], "result": null}),
    )
}

fn ok(result: Value) -> Resp {
    Resp::json(
        200,
        json!({"success": true, "errors": [], "messages": [], "result": result}),
    )
}

fn bgp_json(b: &Bgp) -> Value {
    json!({"id": b.id, "cidr": b.cidr, "asn": 13335, "asn_prepend_count": 0,
           "on_demand": {"advertised": b.advertised, "advertised_modified_at": null,
                         "on_demand_enabled": b.on_demand_enabled, "on_demand_locked": false}})
}

fn valid_value(target: &str, value: &str) -> bool {
    match target {
        "ip" => value.parse::<std::net::Ipv4Addr>().is_ok(),
        "ip6" => value.parse::<std::net::Ipv6Addr>().is_ok(),
        "ip_range" => match value.parse::<ipnet::IpNet>() {
            Ok(ipnet::IpNet::V4(n)) => matches!(n.prefix_len(), 16 | 24) && n.trunc() == n,
            Ok(ipnet::IpNet::V6(n)) => matches!(n.prefix_len(), 32 | 48 | 64) && n.trunc() == n,
            Err(_) => false,
        },
        _ => false,
    }
}

pub fn handle(st: &Mutex<Cf>, r: &Req) -> Resp {
    let Some(path) = r.path.strip_prefix("/client/v4") else {
        return cf_err(404, 7000, "No route for that URI");
    };
    match r.header("authorization") {
        None => {
            return cf_err(
                400,
                9106,
                "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
            )
        }
        Some(a) if a != format!("Bearer {TOKEN}") => {
            return cf_err(403, 9109, "Invalid access token")
        }
        _ => {}
    }
    let mut s = st.lock().unwrap();
    if s.throttle {
        return cf_err(
            429,
            971,
            "Please wait and consider throttling your request speed",
        )
        .with_header("Retry-After", "300");
    }
    if matches!(r.method.as_str(), "POST" | "PATCH")
        && r.header("content-type") != Some("application/json")
    {
        return cf_err(415, 6003, "Invalid request headers");
    }
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (r.method.as_str(), seg.as_slice()) {
        ("GET", ["accounts", acc, "addressing", "prefixes"]) => {
            if *acc != ACCOUNT {
                return cf_err(
                    404,
                    7003,
                    "Could not route to /accounts, perhaps your object identifier is invalid?",
                );
            }
            let list: Vec<Value> = s
                .prefixes
                .iter()
                .map(|(id, (cidr, _))| json!({"id": id, "cidr": cidr, "account_id": ACCOUNT, "on_demand_enabled": true}))
                .collect();
            ok(json!(list))
        }
        ("GET", ["accounts", acc, "addressing", "prefixes", pid, "bgp", "prefixes"])
            if *acc == ACCOUNT =>
        {
            match s.prefixes.get(*pid) {
                Some((_, bgp)) => ok(json!(bgp.iter().map(bgp_json).collect::<Vec<_>>())),
                None => cf_err(404, 1000, "Prefix not found"),
            }
        }
        ("PATCH", ["accounts", acc, "addressing", "prefixes", pid, "bgp", "prefixes", bid])
            if *acc == ACCOUNT =>
        {
            let Some(body) = r.json() else {
                return cf_err(400, 1001, "Invalid JSON body");
            };
            let allowed = ["asn_prepend_count", "auto_advertise_withdraw", "on_demand"];
            if body
                .as_object()
                .is_none_or(|o| o.keys().any(|k| !allowed.contains(&k.as_str())))
            {
                return cf_err(400, 1001, "Unknown field in body");
            }
            let Some(adv) = body["on_demand"]["advertised"].as_bool() else {
                return cf_err(400, 1001, "on_demand.advertised must be a boolean");
            };
            let Some((_, bgp)) = s.prefixes.get_mut(*pid) else {
                return cf_err(404, 1000, "Prefix not found");
            };
            let Some(b) = bgp.iter_mut().find(|b| b.id == *bid) else {
                return cf_err(404, 1000, "BGP prefix not found");
            };
            if !b.on_demand_enabled {
                return cf_err(
                    400,
                    1202,
                    "Prefix is not enabled for on-demand advertisement",
                );
            }
            b.advertised = adv;
            ok(bgp_json(b))
        }
        ("POST", ["zones", zone, "firewall", "access_rules", "rules"]) if *zone == ZONE => {
            s.posts += 1;
            if s.fail_post == Some(s.posts) {
                return cf_err(500, 10002, "Internal error");
            }
            let Some(body) = r.json() else {
                return cf_err(400, 10014, "Invalid JSON");
            };
            let (Some(mode), Some(target), Some(value)) = (
                body["mode"].as_str(),
                body["configuration"]["target"].as_str(),
                body["configuration"]["value"].as_str(),
            ) else {
                return cf_err(
                    400,
                    10014,
                    "mode and configuration{target,value} are required",
                );
            };
            if ![
                "block",
                "challenge",
                "whitelist",
                "js_challenge",
                "managed_challenge",
            ]
            .contains(&mode)
            {
                return cf_err(
                    400,
                    10014,
                    "firewallaccessrules.api.validation_error: invalid mode",
                );
            }
            if !valid_value(target, value) {
                return cf_err(
                    400,
                    10014,
                    "firewallaccessrules.api.validation_error: invalid configuration value",
                );
            }
            if s.rules
                .values()
                .any(|(t, v, _, _)| t == target && v == value)
            {
                return cf_err(400, 10009, "firewallaccessrules.api.duplicate_of_existing");
            }
            s.next += 1;
            let id = format!("{:032x}", s.next);
            let notes = body["notes"].as_str().unwrap_or("").to_string();
            s.rules.insert(
                id.clone(),
                (target.into(), value.into(), mode.into(), notes.clone()),
            );
            ok(
                json!({"id": id, "mode": mode, "notes": notes, "configuration": {"target": target, "value": value},
                      "allowed_modes": ["block", "challenge"], "scope": {"id": ZONE, "type": "zone"}}),
            )
        }
        ("DELETE", ["zones", zone, "firewall", "access_rules", "rules", id]) if *zone == ZONE => {
            match s.rules.remove(*id) {
                Some(_) => ok(json!({"id": id})),
                None => cf_err(404, 10001, "firewallaccessrules.api.not_found"),
            }
        }
        (_, ["zones", ..]) | (_, ["accounts", ..]) => cf_err(
            404,
            7003,
            "Could not route to this path, perhaps your object identifier is invalid?",
        ),
        _ => cf_err(405, 10405, "Method not allowed"),
    }
}

fn start(setup: impl FnOnce(&mut Cf)) -> (TestServer, Arc<Mutex<Cf>>) {
    let mut cf = Cf::default();
    setup(&mut cf);
    let st = Arc::new(Mutex::new(cf));
    let st2 = st.clone();
    (TestServer::start(move |r| handle(&st2, r)), st)
}

fn onboarded(cf: &mut Cf) {
    let b = |id: &str, cidr: &str| Bgp {
        id: id.into(),
        cidr: cidr.into(),
        advertised: false,
        on_demand_enabled: true,
    };
    cf.prefixes.insert(
        "p1".into(),
        (
            "203.0.112.0/23".into(),
            vec![b("b0", "203.0.112.0/23"), b("b1", "203.0.113.0/24")],
        ),
    );
    cf.prefixes.insert(
        "p2".into(),
        ("198.18.0.0/24".into(), vec![b("b2", "198.18.0.0/24")]),
    );
}

fn mt(srv: &TestServer, token: &str) -> MagicTransit {
    MagicTransit::new(
        "cf-mt",
        Some(&format!("{}/client/v4", srv.base)),
        ACCOUNT,
        Secret::new(token),
        quick(),
    )
    .unwrap()
}

fn divert(p: &str) -> ProviderAction {
    ProviderAction::Divert {
        prefix: p.parse().unwrap(),
    }
}

fn advertised(st: &Mutex<Cf>) -> Vec<String> {
    let s = st.lock().unwrap();
    s.prefixes
        .values()
        .flat_map(|(_, b)| b.iter().filter(|b| b.advertised).map(|b| b.cidr.clone()))
        .collect()
}

#[test]
fn magic_transit_advertises_the_most_specific_bgp_prefix_and_withdraws_it() {
    let (srv, st) = start(onboarded);
    let mut p = mt(&srv, TOKEN);
    let receipt = p.apply(&divert("203.0.113.0/24")).unwrap();
    assert_eq!(receipt.ids, vec!["p1", "b1"]);
    assert_eq!(advertised(&st), vec!["203.0.113.0/24"]);
    p.withdraw(&receipt).unwrap();
    assert!(advertised(&st).is_empty());
    // A single address inside the /23 diverts the /24 holding it.
    let r = p.apply(&divert("203.0.112.9/32")).unwrap();
    assert_eq!(r.ids, vec!["p1", "b0"]);
    p.withdraw(&r).unwrap();
    assert!(advertised(&st).is_empty());
}

#[test]
fn magic_transit_leaves_an_already_advertised_prefix_advertised() {
    let (srv, st) = start(|cf| {
        onboarded(cf);
        cf.prefixes.get_mut("p2").unwrap().1[0].advertised = true;
    });
    let mut p = mt(&srv, TOKEN);
    let receipt = p.apply(&divert("198.18.0.0/24")).unwrap();
    assert_eq!(receipt.detail["was_advertised"], json!(true));
    p.withdraw(&receipt).unwrap();
    assert_eq!(advertised(&st), vec!["198.18.0.0/24"]);
    // No PATCH was sent either way.
    assert!(
        !srv.calls().iter().any(|c| c.starts_with("PATCH")),
        "{:?}",
        srv.calls()
    );
}

#[test]
fn magic_transit_errors_name_the_problem() {
    let (srv, _st) = start(|cf| {
        onboarded(cf);
        cf.prefixes.get_mut("p2").unwrap().1[0].on_demand_enabled = false;
    });
    let mut p = mt(&srv, TOKEN);
    let e = p.apply(&divert("192.0.2.0/24")).unwrap_err();
    assert!(
        e.to_string()
            .contains("no onboarded prefix covers 192.0.2.0/24"),
        "{e}"
    );
    let e = p.apply(&divert("198.18.0.0/24")).unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(
        e.to_string().contains("(1202): Prefix is not enabled"),
        "{e}"
    );
    let block = ProviderAction::BlockSources {
        sources: vec![],
        dst: None,
        protocol: None,
        dst_ports: vec![],
    };
    assert!(matches!(
        p.apply(&block),
        Err(ProviderError::Unsupported { .. })
    ));

    let mut bad = mt(&srv, "wrong");
    let e = bad.apply(&divert("203.0.113.0/24")).unwrap_err();
    match &e {
        ProviderError::Http {
            status: 403,
            code,
            message,
            ..
        } => {
            assert_eq!(code.as_deref(), Some("9109"));
            assert_eq!(message, "Invalid access token");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !e.to_string().contains("wrong"),
        "the token must not leak: {e}"
    );
}

fn waf(srv: &TestServer) -> CloudflareWaf {
    CloudflareWaf::new(
        "cf-waf",
        Some(&format!("{}/client/v4", srv.base)),
        Scope::Zone(ZONE.into()),
        Secret::new(TOKEN),
        quick(),
    )
    .unwrap()
}

fn block(sources: &[&str]) -> ProviderAction {
    ProviderAction::BlockSources {
        sources: sources.iter().map(|s| s.parse().unwrap()).collect(),
        dst: Some("203.0.113.10/32".parse().unwrap()),
        protocol: Some(6),
        dst_ports: vec![443],
    }
}

fn rules(st: &Mutex<Cf>) -> Vec<(String, String)> {
    st.lock()
        .unwrap()
        .rules
        .values()
        .map(|(t, v, _, _)| (t.clone(), v.clone()))
        .collect()
}

#[test]
fn waf_creates_block_rules_per_source_and_removes_them() {
    let (srv, st) = start(|_| {});
    let mut p = waf(&srv);
    let receipt = p
        .apply(&block(&[
            "198.51.100.0/24",
            "192.0.2.7/32",
            "2001:db8::/48",
            "10.0.0.0/23",
        ]))
        .unwrap();
    assert_eq!(receipt.ids.len(), 5);
    let mut got = rules(&st);
    got.sort();
    let want: Vec<(String, String)> = [
        ("ip", "192.0.2.7"),
        ("ip_range", "10.0.0.0/24"),
        ("ip_range", "10.0.1.0/24"),
        ("ip_range", "198.51.100.0/24"),
        ("ip_range", "2001:db8::/48"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
    {
        let s = st.lock().unwrap();
        let (_, _, mode, notes) = s.rules.values().next().unwrap();
        assert_eq!(mode, "block");
        assert!(notes.starts_with("levee: block 4 source(s)"), "{notes}");
    }
    p.withdraw(&receipt).unwrap();
    assert!(rules(&st).is_empty());
    // Withdrawing again converges (404s are success).
    p.withdraw(&receipt).unwrap();
}

#[test]
fn waf_leaves_someone_elses_rule_alone_and_rolls_back_on_failure() {
    let (srv, st) = start(|cf| {
        cf.rules.insert(
            "pre".into(),
            (
                "ip".into(),
                "192.0.2.7".into(),
                "block".into(),
                "ops".into(),
            ),
        );
    });
    let mut p = waf(&srv);
    let receipt = p
        .apply(&block(&["192.0.2.7/32", "198.51.100.0/24"]))
        .unwrap();
    assert_eq!(receipt.ids.len(), 1, "the duplicate is not ours");
    p.withdraw(&receipt).unwrap();
    assert_eq!(
        rules(&st),
        vec![("ip".to_string(), "192.0.2.7".to_string())]
    );

    {
        let mut s = st.lock().unwrap();
        s.fail_post = Some(s.posts + 3);
    }
    let e = p
        .apply(&block(&[
            "198.51.100.0/24",
            "198.51.101.0/24",
            "198.51.102.0/24",
        ]))
        .unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(
        rules(&st).len(),
        1,
        "the two rules created before the failure were removed"
    );

    st.lock().unwrap().throttle = true;
    match p.apply(&block(&["198.51.100.0/24"])).unwrap_err() {
        ProviderError::RateLimited {
            retry_after,
            message,
            ..
        } => {
            assert_eq!(retry_after, Some(std::time::Duration::from_secs(300)));
            assert!(message.contains("throttling"));
        }
        other => panic!("{other:?}"),
    }
}
