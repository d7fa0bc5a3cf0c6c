//! DigitalOcean API v2 Cloud Firewalls as documented: bearer token, `GET
//! /v2/firewalls/{id}`, `POST`/`DELETE /v2/firewalls/{id}/rules` with
//! `inbound_rules` (protocol tcp/udp/icmp, ports "N", "N-M" or "0",
//! `sources` one object of addresses, action allow/deny), 204 answers,
//! errors `{"id","message"}`.

use crate::server::{quick, Req, Resp, TestServer};
use levee_providers::providers::digitalocean::DigitalOcean;
use levee_providers::secret::Secret;
use levee_providers::{Provider, ProviderAction, ProviderError};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "dop_v1_test";
const FW: &str = "bb4b2611-3d72-467b-8602-280330ecd65c";

fn derr(status: u16, id: &str, msg: &str) -> Resp {
    Resp::json(
        status,
        json!({"id": id, "message": msg, "request_id": "4851a473-1621-42ea-b2f9-5071c0ea8414"}),
    )
}

fn valid_rule(r: &Value) -> Result<(), &'static str> {
    let proto = r["protocol"].as_str().ok_or("protocol is required")?;
    if !["tcp", "udp", "icmp"].contains(&proto) {
        return Err("protocol must be tcp, udp or icmp");
    }
    let ports = r["ports"].as_str().ok_or("ports is required")?;
    let ports_ok = ports == "0"
        || ports
            .split('-')
            .all(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    if !ports_ok || (proto == "icmp" && ports != "0") {
        return Err("ports must be a port, a range or 0");
    }
    if !r["sources"].is_object() {
        return Err("You specified an invalid type for one of the sources.");
    }
    let addrs = r["sources"]["addresses"]
        .as_array()
        .ok_or("sources needs addresses")?;
    if addrs.is_empty()
        || !addrs.iter().all(|a| {
            a.as_str().is_some_and(|s| {
                s.parse::<ipnet::IpNet>().is_ok() || s.parse::<std::net::IpAddr>().is_ok()
            })
        })
    {
        return Err("sources.addresses must be IP addresses or CIDRs");
    }
    if !matches!(
        r.get("action").and_then(|a| a.as_str()),
        None | Some("allow" | "deny")
    ) {
        return Err("action must be allow or deny");
    }
    Ok(())
}

pub fn handle(st: &Mutex<Vec<Value>>, r: &Req) -> Resp {
    match r.bearer() {
        Some(TOKEN) => {}
        _ => return derr(401, "unauthorized", "Unable to authenticate you."),
    }
    let mut rules = st.lock().unwrap();
    let fw_path = format!("/v2/firewalls/{FW}");
    let rules_path = format!("{fw_path}/rules");
    if r.path.starts_with("/v2/firewalls/") && r.path != fw_path && r.path != rules_path {
        return derr(
            404,
            "not_found",
            "The resource you were accessing could not be found.",
        );
    }
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", p) if p == fw_path => Resp::json(
            200,
            json!({"firewall": {"id": FW, "name": "web", "status": "succeeded",
            "inbound_rules": *rules, "outbound_rules": [], "droplet_ids": [8043964], "tags": []}}),
        ),
        (m @ ("POST" | "DELETE"), p) if p == rules_path => {
            if r.header("content-type") != Some("application/json") {
                return derr(400, "bad_request", "Content-Type must be application/json");
            }
            let Some(body) = r.json() else {
                return derr(400, "bad_request", "unparsable JSON");
            };
            let Some(list) = body["inbound_rules"].as_array() else {
                return derr(
                    422,
                    "unprocessable_entity",
                    "inbound_rules or outbound_rules is required",
                );
            };
            for rule in list {
                if let Err(msg) = valid_rule(rule) {
                    return derr(422, "unprocessable_entity", msg);
                }
            }
            if m == "POST" {
                if rules.len() + list.len() > 50 {
                    return derr(
                        422,
                        "unprocessable_entity",
                        "a firewall holds at most 50 rules",
                    );
                }
                rules.extend(list.iter().cloned());
            } else {
                rules.retain(|x| !list.contains(x));
            }
            Resp::empty(204)
        }
        _ => derr(
            404,
            "not_found",
            "The resource you were accessing could not be found.",
        ),
    }
}

fn allow(proto: &str, ports: &str) -> Value {
    json!({"protocol": proto, "ports": ports, "sources": {"addresses": ["0.0.0.0/0", "::/0"]}})
}

fn start(rules: Vec<Value>) -> (TestServer, Arc<Mutex<Vec<Value>>>) {
    let st = Arc::new(Mutex::new(rules));
    let st2 = st.clone();
    (TestServer::start(move |r| handle(&st2, r)), st)
}

fn doc(srv: &TestServer, token: &str) -> DigitalOcean {
    DigitalOcean::new("do", Some(&srv.base), FW, Secret::new(token), quick()).unwrap()
}

#[test]
fn deny_rules_are_added_and_removed_exactly() {
    let before = vec![allow("tcp", "443"), allow("udp", "53")];
    let (srv, st) = start(before.clone());
    let mut p = doc(&srv, TOKEN);
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
        let rules = st.lock().unwrap();
        assert_eq!(rules.len(), 4);
        assert_eq!(
            rules[2],
            json!({"protocol": "udp", "ports": "53", "action": "deny",
            "sources": {"addresses": ["198.51.100.0/24", "2001:db8::/48"]}})
        );
        assert_eq!(rules[3]["ports"], json!("123"));
    }
    p.withdraw(&receipt).unwrap();
    assert_eq!(*st.lock().unwrap(), before);

    // Any protocol: tcp, udp and icmp rules on all ports.
    let any = ProviderAction::BlockSources {
        sources: vec!["192.0.2.7/32".parse().unwrap()],
        dst: None,
        protocol: None,
        dst_ports: vec![],
    };
    let r = p.apply(&any).unwrap();
    let added: Vec<(String, String)> = st.lock().unwrap()[2..]
        .iter()
        .map(|x| {
            (
                x["protocol"].as_str().unwrap().to_string(),
                x["ports"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        added,
        vec![
            ("tcp".into(), "0".into()),
            ("udp".into(), "0".into()),
            ("icmp".into(), "0".into())
        ]
    );
    p.withdraw(&r).unwrap();
    assert_eq!(*st.lock().unwrap(), before);
}

#[test]
fn someone_elses_identical_rule_survives_and_errors_are_clear() {
    let theirs = json!({"protocol": "tcp", "ports": "22", "action": "deny", "sources": {"addresses": ["192.0.2.7/32"]}});
    let (srv, st) = start(vec![theirs.clone()]);
    let mut p = doc(&srv, TOKEN);
    let a = ProviderAction::BlockSources {
        sources: vec!["192.0.2.7/32".parse().unwrap()],
        dst: None,
        protocol: Some(6),
        dst_ports: vec![22],
    };
    let r = p.apply(&a).unwrap();
    p.withdraw(&r).unwrap();
    assert_eq!(*st.lock().unwrap(), vec![theirs]);

    let mut bad = doc(&srv, "nope");
    match bad.apply(&a).unwrap_err() {
        ProviderError::Http {
            status: 401,
            code,
            message,
            ..
        } => {
            assert_eq!(code.as_deref(), Some("unauthorized"));
            assert_eq!(message, "Unable to authenticate you.");
        }
        other => panic!("{other:?}"),
    }
    let gre = ProviderAction::BlockSources {
        sources: vec!["192.0.2.7/32".parse().unwrap()],
        dst: None,
        protocol: Some(47),
        dst_ports: vec![],
    };
    assert!(matches!(
        p.apply(&gre),
        Err(ProviderError::Unsupported { .. })
    ));
}
