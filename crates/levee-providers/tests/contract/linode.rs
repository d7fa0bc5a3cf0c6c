//! Linode API v4 Cloud Firewall rules as documented: bearer token, `GET` /
//! `PUT /v4/networking/firewalls/{id}/rules` (PUT replaces everything and
//! must carry inbound, outbound and both policies), rule fields checked
//! (action ACCEPT/DROP, protocol, ports only for TCP/UDP with at most 15
//! pieces, addresses by family, label 3-32 characters), at most 25 rules,
//! errors `{"errors":[{"reason","field"}]}`.

use crate::server::{quick, Req, Resp, TestServer};
use levee_providers::providers::linode::Linode;
use levee_providers::secret::Secret;
use levee_providers::{Provider, ProviderAction, ProviderError};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "linode-pat";
const FW: u64 = 123;

fn lerr(status: u16, field: Option<&str>, reason: &str) -> Resp {
    let mut e = json!({"reason": reason});
    if let Some(f) = field {
        e["field"] = json!(f);
    }
    Resp::json(status, json!({"errors": [e]}))
}

fn check_rule(r: &Value, at: &str) -> Result<(), (String, String)> {
    let bad = |f: &str, why: &str| Err((format!("{at}.{f}"), why.to_string()));
    if !matches!(r["action"].as_str(), Some("ACCEPT" | "DROP")) {
        return bad("action", "Must be ACCEPT or DROP");
    }
    let proto = r["protocol"].as_str().unwrap_or("");
    if !["TCP", "UDP", "ICMP", "IPENCAP"].contains(&proto) {
        return bad("protocol", "Must be TCP, UDP, ICMP or IPENCAP");
    }
    if let Some(p) = r.get("ports").filter(|p| !p.is_null()) {
        if !matches!(proto, "TCP" | "UDP") {
            return bad("ports", "Ports are only allowed for TCP and UDP");
        }
        let pieces: Vec<&str> = p
            .as_str()
            .unwrap_or("x")
            .split(',')
            .map(str::trim)
            .collect();
        if pieces.len() > 15
            || !pieces
                .iter()
                .all(|x| x.split('-').all(|n| n.parse::<u16>().is_ok_and(|n| n > 0)))
        {
            return bad("ports", "Invalid port specification");
        }
    }
    for (fam, v6) in [("ipv4", false), ("ipv6", true)] {
        for a in r["addresses"][fam].as_array().into_iter().flatten() {
            let ok = a
                .as_str()
                .and_then(|s| s.parse::<ipnet::IpNet>().ok())
                .is_some_and(|n| n.addr().is_ipv6() == v6);
            if !ok {
                return bad(&format!("addresses.{fam}"), "Invalid address");
            }
        }
    }
    let label = r["label"].as_str().unwrap_or("");
    if !(3..=32).contains(&label.len()) {
        return bad("label", "Length must be 3-32 characters");
    }
    Ok(())
}

pub fn handle(st: &Mutex<Value>, r: &Req) -> Resp {
    if r.bearer() != Some(TOKEN) {
        return lerr(401, None, "Invalid Token");
    }
    if r.path != format!("/v4/networking/firewalls/{FW}/rules") {
        return lerr(404, None, "Not found");
    }
    let mut s = st.lock().unwrap();
    match r.method.as_str() {
        "GET" => Resp::json(200, s.clone()),
        "PUT" => {
            let Some(b) = r.json() else {
                return lerr(400, None, "Invalid JSON");
            };
            for k in ["inbound", "outbound"] {
                if !b[k].is_array() {
                    return lerr(400, Some(k), "Must be a list of rules");
                }
            }
            for k in ["inbound_policy", "outbound_policy"] {
                if !matches!(b[k].as_str(), Some("ACCEPT" | "DROP")) {
                    return lerr(400, Some(k), "Must be ACCEPT or DROP");
                }
            }
            for k in ["inbound", "outbound"] {
                for (i, rule) in b[k].as_array().unwrap().iter().enumerate() {
                    if let Err((f, why)) = check_rule(rule, &format!("{k}[{i}]")) {
                        return lerr(400, Some(&f), &why);
                    }
                }
            }
            if b["inbound"].as_array().unwrap().len() + b["outbound"].as_array().unwrap().len() > 25
            {
                return lerr(
                    400,
                    Some("inbound"),
                    "Too many rules; a firewall has at most 25",
                );
            }
            for k in ["inbound", "outbound", "inbound_policy", "outbound_policy"] {
                s[k] = b[k].clone();
            }
            s["version"] = json!(s["version"].as_u64().unwrap_or(0) + 1);
            Resp::json(200, s.clone())
        }
        _ => lerr(405, None, "Method not allowed"),
    }
}

fn start() -> (TestServer, Arc<Mutex<Value>>) {
    let state = json!({
        "inbound": [{"action": "ACCEPT", "protocol": "TCP", "ports": "22, 443", "label": "web-in",
                     "addresses": {"ipv4": ["0.0.0.0/0"], "ipv6": ["::/0"]}}],
        "inbound_policy": "DROP",
        "outbound": [],
        "outbound_policy": "ACCEPT",
        "version": 1,
        "fingerprint": "4ef67a8d"
    });
    let st = Arc::new(Mutex::new(state));
    let st2 = st.clone();
    (TestServer::start(move |r| handle(&st2, r)), st)
}

fn linode(srv: &TestServer, token: &str) -> Linode {
    Linode::new(
        "linode",
        Some(&format!("{}/v4", srv.base)),
        FW,
        Secret::new(token),
        quick(),
    )
    .unwrap()
}

#[test]
fn drop_rules_go_first_and_withdrawal_restores_the_rules() {
    let (srv, st) = start();
    let before = st.lock().unwrap().clone();
    let mut p = linode(&srv, TOKEN);
    let a = ProviderAction::BlockSources {
        sources: vec![
            "198.51.100.0/24".parse().unwrap(),
            "2001:db8::/48".parse().unwrap(),
        ],
        dst: Some("203.0.113.10/32".parse().unwrap()),
        protocol: Some(17),
        dst_ports: vec![53, 123],
    };
    let receipt = p.apply(&a).unwrap();
    {
        let s = st.lock().unwrap();
        let first = &s["inbound"][0];
        assert_eq!(first["action"], json!("DROP"));
        assert_eq!(first["protocol"], json!("UDP"));
        assert_eq!(first["ports"], json!("53, 123"));
        assert_eq!(
            first["addresses"],
            json!({"ipv4": ["198.51.100.0/24"], "ipv6": ["2001:db8::/48"]})
        );
        assert_eq!(s["inbound"][1], before["inbound"][0]);
        assert_eq!(s["inbound_policy"], json!("DROP"));
    }
    p.withdraw(&receipt).unwrap();
    let after = st.lock().unwrap().clone();
    for k in ["inbound", "outbound", "inbound_policy", "outbound_policy"] {
        assert_eq!(after[k], before[k], "{k}");
    }

    // Any protocol: TCP, UDP and ICMP (ICMP without ports).
    let any = ProviderAction::BlockSources {
        sources: vec!["192.0.2.7/32".parse().unwrap()],
        dst: None,
        protocol: None,
        dst_ports: vec![80],
    };
    let r = p.apply(&any).unwrap();
    assert_eq!(r.ids.len(), 3);
    assert!(st.lock().unwrap()["inbound"][2].get("ports").is_none());
    p.withdraw(&r).unwrap();
    assert_eq!(st.lock().unwrap()["inbound"], before["inbound"]);
}

#[test]
fn bad_tokens_and_full_firewalls_are_clear_errors() {
    let (srv, st) = start();
    let a = ProviderAction::BlockSources {
        sources: vec!["192.0.2.7/32".parse().unwrap()],
        dst: None,
        protocol: None,
        dst_ports: vec![],
    };
    match linode(&srv, "nope").apply(&a).unwrap_err() {
        ProviderError::Http {
            status: 401,
            message,
            ..
        } => assert_eq!(message, "Invalid Token"),
        other => panic!("{other:?}"),
    }
    {
        let mut s = st.lock().unwrap();
        let filler: Vec<Value> = (0..23)
            .map(|i| json!({"action": "ACCEPT", "protocol": "TCP", "ports": format!("{}", 1000 + i), "label": format!("r{i:03}"), "addresses": {"ipv4": ["0.0.0.0/0"]}}))
            .collect();
        s["inbound"].as_array_mut().unwrap().extend(filler);
    }
    let e = linode(&srv, TOKEN).apply(&a).unwrap_err();
    assert!(
        e.to_string()
            .contains("has 24 rules; adding 3 would pass Linode's limit of 25"),
        "{e}"
    );
}
