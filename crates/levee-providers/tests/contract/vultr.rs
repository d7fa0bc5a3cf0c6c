//! Vultr API v2 firewall groups as documented: bearer API key, list /
//! create / delete rules under `/v2/firewalls/{group}/rules`, rule fields
//! checked (ip_type, protocol, subnet of that family, subnet_size, port
//! `N` or `N:M` for tcp/udp only), accept-only rules, at most 50 rules,
//! errors `{"error","status"}`.

use crate::server::{quick, Req, Resp, TestServer};
use levee_providers::providers::vultr::Vultr;
use levee_providers::secret::Secret;
use levee_providers::{Provider, ProviderAction, ProviderError};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

const KEY: &str = "VULTRKEY123";
const GROUP: &str = "1234abcd-0000-4000-8000-00000000beef";

#[derive(Default)]
pub struct Group {
    pub rules: BTreeMap<u64, Value>,
    pub next: u64,
}

fn verr(status: u16, msg: &str) -> Resp {
    Resp::json(status, json!({"error": msg, "status": status}))
}

fn check(b: &Value) -> Result<(), &'static str> {
    let ip_type = b["ip_type"].as_str().ok_or("ip_type is required")?;
    let proto = b["protocol"].as_str().ok_or("protocol is required")?;
    if !["icmp", "tcp", "udp", "gre", "esp", "ah"].contains(&proto) {
        return Err("Invalid protocol");
    }
    let subnet: IpAddr = b["subnet"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or("Invalid subnet")?;
    let size = b["subnet_size"].as_u64().ok_or("subnet_size is required")?;
    match (ip_type, subnet) {
        ("v4", IpAddr::V4(_)) if size <= 32 => {}
        ("v6", IpAddr::V6(_)) if size <= 128 => {}
        _ => return Err("subnet does not match ip_type"),
    }
    let port = b["port"].as_str().unwrap_or("");
    let tcp_udp = matches!(proto, "tcp" | "udp");
    if tcp_udp && !port.split(':').all(|p| p.parse::<u16>().is_ok()) {
        return Err("Invalid port");
    }
    if !tcp_udp && !port.is_empty() {
        return Err("port is only for tcp and udp");
    }
    Ok(())
}

pub fn handle(st: &Mutex<Group>, r: &Req) -> Resp {
    if r.bearer() != Some(KEY) {
        return verr(401, "Invalid API token.");
    }
    let base = format!("/v2/firewalls/{GROUP}/rules");
    let mut g = st.lock().unwrap();
    if r.path == base {
        match r.method.as_str() {
            "GET" => {
                let list: Vec<Value> = g.rules.values().cloned().collect();
                Resp::json(
                    200,
                    json!({"firewall_rules": list, "meta": {"total": list.len(), "links": {"next": "", "prev": ""}}}),
                )
            }
            "POST" => {
                let Some(b) = r.json() else {
                    return verr(400, "Invalid JSON");
                };
                if let Err(m) = check(&b) {
                    return verr(400, m);
                }
                if g.rules.len() >= 50 {
                    return verr(
                        400,
                        "Firewall group has reached the maximum number of rules",
                    );
                }
                g.next += 1;
                let id = g.next;
                let rule = json!({"id": id, "type": b["ip_type"], "ip_type": b["ip_type"], "action": "accept",
                    "protocol": b["protocol"], "port": b["port"].as_str().unwrap_or(""), "subnet": b["subnet"],
                    "subnet_size": b["subnet_size"], "source": b["source"].as_str().unwrap_or(""),
                    "notes": b["notes"].as_str().unwrap_or("")});
                g.rules.insert(id, rule.clone());
                Resp::json(201, json!({"firewall_rule": rule}))
            }
            _ => verr(405, "Method not allowed"),
        }
    } else if let Some(id) = r.path.strip_prefix(&format!("{base}/")) {
        let Ok(id) = id.parse::<u64>() else {
            return verr(404, "Rule not found");
        };
        match r.method.as_str() {
            "DELETE" => match g.rules.remove(&id) {
                Some(_) => Resp::empty(204),
                None => verr(404, "Rule not found"),
            },
            _ => verr(405, "Method not allowed"),
        }
    } else {
        verr(404, "Not found")
    }
}

fn start(rules: &[(&str, &str, &str, u8)]) -> (TestServer, Arc<Mutex<Group>>) {
    let mut g = Group::default();
    for (proto, port, subnet, size) in rules {
        g.next += 1;
        let v6 = subnet.contains(':');
        g.rules.insert(g.next, json!({"id": g.next, "type": if v6 {"v6"} else {"v4"}, "ip_type": if v6 {"v6"} else {"v4"},
            "action": "accept", "protocol": proto, "port": port, "subnet": subnet, "subnet_size": size, "source": "", "notes": ""}));
    }
    let st = Arc::new(Mutex::new(g));
    let st2 = st.clone();
    (TestServer::start(move |r| handle(&st2, r)), st)
}

/// Is `ip` accepted for `proto`/`port` by the group's rules?
fn accepted(st: &Mutex<Group>, proto: &str, port: &str, ip: &str) -> bool {
    let ip: IpAddr = ip.parse().unwrap();
    st.lock().unwrap().rules.values().any(|r| {
        let net = ipnet::IpNet::new(
            r["subnet"].as_str().unwrap().parse().unwrap(),
            r["subnet_size"].as_u64().unwrap() as u8,
        )
        .unwrap();
        r["protocol"] == json!(proto) && r["port"] == json!(port) && net.contains(&ip)
    })
}

fn shape(st: &Mutex<Group>) -> Vec<(String, String, String, u64)> {
    let mut v: Vec<_> = st
        .lock()
        .unwrap()
        .rules
        .values()
        .map(|r| {
            (
                r["protocol"].as_str().unwrap().to_string(),
                r["port"].as_str().unwrap().to_string(),
                r["subnet"].as_str().unwrap().to_string(),
                r["subnet_size"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn vultr(srv: &TestServer, key: &str) -> Vultr {
    Vultr::new("vultr", Some(&srv.base), GROUP, Secret::new(key), quick()).unwrap()
}

#[test]
fn accepting_rules_are_rewritten_around_the_sources_and_restored() {
    let (srv, st) = start(&[
        ("tcp", "443", "0.0.0.0", 0),
        ("udp", "53", "0.0.0.0", 0),
        ("tcp", "22", "192.0.2.0", 24),
    ]);
    let before = shape(&st);
    let mut p = vultr(&srv, KEY);
    let a = ProviderAction::BlockSources {
        sources: vec!["198.51.100.0/24".parse().unwrap()],
        dst: None,
        protocol: Some(6),
        dst_ports: vec![443],
    };
    assert!(accepted(&st, "tcp", "443", "198.51.100.7"));
    let receipt = p.apply(&a).unwrap();
    assert_eq!(receipt.ids.len(), 24);
    assert!(!accepted(&st, "tcp", "443", "198.51.100.7"));
    assert!(accepted(&st, "tcp", "443", "198.51.101.7"));
    assert!(accepted(&st, "tcp", "443", "8.8.8.8"));
    assert!(
        accepted(&st, "udp", "53", "198.51.100.7"),
        "other protocols untouched"
    );
    assert!(
        accepted(&st, "tcp", "22", "192.0.2.5"),
        "rules not holding the sources untouched"
    );
    p.withdraw(&receipt).unwrap();
    assert_eq!(shape(&st), before);
    // Withdrawing twice converges.
    p.withdraw(&receipt).unwrap();
    assert_eq!(shape(&st), before);
}

#[test]
fn too_many_rules_and_bad_keys_are_refused_without_changes() {
    let (srv, st) = start(&[
        ("tcp", "443", "0.0.0.0", 0),
        ("tcp", "80", "0.0.0.0", 0),
        ("udp", "53", "0.0.0.0", 0),
    ]);
    let before = shape(&st);
    let mut p = vultr(&srv, KEY);
    let a = ProviderAction::BlockSources {
        sources: vec![
            "198.51.100.0/24".parse().unwrap(),
            "203.0.113.0/24".parse().unwrap(),
        ],
        dst: None,
        protocol: None,
        dst_ports: vec![],
    };
    let e = p.apply(&a).unwrap_err();
    assert!(e.to_string().contains("accept rules (more than 50)"), "{e}");
    assert_eq!(shape(&st), before);
    match vultr(&srv, "bad").apply(&a).unwrap_err() {
        ProviderError::Http {
            status: 401,
            message,
            ..
        } => assert_eq!(message, "Invalid API token."),
        other => panic!("{other:?}"),
    }
}
