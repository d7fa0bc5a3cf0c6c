//! Hetzner Robot webservice as documented: basic auth, `GET` / `POST
//! /firewall/{server-id}` with the whole configuration form-encoded
//! (`rules[input][N][field]`), at most 10 input rules, field values
//! checked, "in process" after a change (another change meanwhile is 409
//! FIREWALL_IN_PROCESS), errors as `{"error":{status,code,message}}`.

use crate::server::{quick, Req, Resp, TestServer};
use levee_providers::providers::hetzner::HetznerRobot;
use levee_providers::secret::Secret;
use levee_providers::{Provider, ProviderAction, ProviderError};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SERVER: u64 = 321;
const AUTH: &str = "Basic cm9ib3Q6czNjcjN0"; // robot:s3cr3t

#[derive(Clone, Debug, PartialEq)]
pub struct Fw {
    pub status: String,
    pub filter_ipv6: bool,
    pub whitelist_hos: bool,
    pub input: Vec<Map<String, Value>>,
    pub output: Vec<Map<String, Value>>,
}

fn herr(status: u16, code: &str, msg: &str) -> Resp {
    Resp::json(
        status,
        json!({"error": {"status": status, "code": code, "message": msg}}),
    )
}

fn fw_json(f: &Fw) -> Value {
    json!({"firewall": {"server_ip": "203.0.113.10", "server_number": SERVER, "status": f.status,
        "filter_ipv6": f.filter_ipv6, "whitelist_hos": f.whitelist_hos, "port": "main",
        "rules": {"input": f.input, "output": f.output}}})
}

const FIELDS: [&str; 9] = [
    "ip_version",
    "name",
    "dst_ip",
    "src_ip",
    "dst_port",
    "src_port",
    "protocol",
    "tcp_flags",
    "action",
];

/// Parses and checks the rules of one direction; Err(invalid field).
fn parse_rules(form: &[(String, String)], dir: &str) -> Result<Vec<Map<String, Value>>, String> {
    let mut by_index: BTreeMap<usize, Map<String, Value>> = BTreeMap::new();
    let prefix = format!("rules[{dir}][");
    for (k, v) in form {
        let Some(rest) = k.strip_prefix(&prefix) else {
            continue;
        };
        let (idx, field) = rest.split_once("][").ok_or(k.clone())?;
        let field = field.strip_suffix(']').ok_or(k.clone())?;
        let idx: usize = idx.parse().map_err(|_| k.clone())?;
        if !FIELDS.contains(&field) {
            return Err(k.clone());
        }
        by_index
            .entry(idx)
            .or_default()
            .insert(field.into(), Value::String(v.clone()));
    }
    if by_index.keys().enumerate().any(|(i, k)| i != *k) {
        return Err(format!("rules[{dir}]"));
    }
    let mut out = Vec::new();
    for (i, mut r) in by_index {
        let get = |f: &str| r.get(f).and_then(|v| v.as_str()).map(str::to_string);
        let bad = |f: &str| format!("rules[{dir}][{i}][{f}]");
        if !matches!(get("action").as_deref(), Some("accept" | "discard")) {
            return Err(bad("action"));
        }
        let version = get("ip_version");
        if !matches!(version.as_deref(), None | Some("ipv4" | "ipv6")) {
            return Err(bad("ip_version"));
        }
        for f in ["src_ip", "dst_ip"] {
            if let Some(ip) = get(f) {
                let ok = match ip.parse::<ipnet::IpNet>() {
                    Ok(n) => {
                        version.as_deref() == Some(if n.addr().is_ipv4() { "ipv4" } else { "ipv6" })
                    }
                    Err(_) => false,
                };
                if !ok {
                    return Err(bad(f));
                }
            }
        }
        if !matches!(
            get("protocol").as_deref(),
            None | Some("tcp" | "udp" | "gre" | "icmp" | "ipip" | "ah" | "esp")
        ) {
            return Err(bad("protocol"));
        }
        if let Some(p) = get("dst_port") {
            if !p.split('-').all(|x| x.parse::<u16>().is_ok()) {
                return Err(bad("dst_port"));
            }
        }
        for f in FIELDS {
            r.entry(f.to_string()).or_insert(Value::Null);
        }
        out.push(r);
    }
    Ok(out)
}

pub fn handle(st: &Mutex<Fw>, r: &Req) -> Resp {
    if r.header("authorization") != Some(AUTH) {
        return herr(401, "UNAUTHORIZED", "Unauthorized");
    }
    let Some(id) = r.path.strip_prefix("/firewall/") else {
        return herr(404, "NOT_FOUND", "Not found");
    };
    if id != SERVER.to_string() {
        return herr(404, "SERVER_NOT_FOUND", "Server with id not found");
    }
    let mut s = st.lock().unwrap();
    match r.method.as_str() {
        "GET" => {
            let answer = Resp::json(200, fw_json(&s));
            // Processing finishes by the next look.
            if s.status == "in process" {
                s.status = "active".into();
            }
            answer
        }
        "POST" => {
            if r.header("content-type") != Some("application/x-www-form-urlencoded") {
                return herr(400, "INVALID_INPUT", "invalid input");
            }
            if s.status == "in process" {
                return herr(
                    409,
                    "FIREWALL_IN_PROCESS",
                    "The firewall cannot be updated because it is currently being processed",
                );
            }
            let form = r.form();
            let get = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
            let invalid = |f: &str| {
                Resp::json(
                    400,
                    json!({"error": {"status": 400, "code": "INVALID_INPUT", "message": "invalid input", "missing": null, "invalid": [f]}}),
                )
            };
            if !matches!(get("status"), Some("active" | "disabled")) {
                return invalid("status");
            }
            for b in ["filter_ipv6", "whitelist_hos"] {
                if !matches!(get(b), None | Some("true" | "false")) {
                    return invalid(b);
                }
            }
            let (input, output) = match (parse_rules(&form, "input"), parse_rules(&form, "output"))
            {
                (Ok(i), Ok(o)) => (i, o),
                (Err(f), _) | (_, Err(f)) => return invalid(&f),
            };
            if input.len() > 10 {
                return invalid("rules[input]");
            }
            s.filter_ipv6 = get("filter_ipv6") == Some("true");
            s.whitelist_hos = get("whitelist_hos") == Some("true");
            s.input = input;
            s.output = output;
            s.status = "in process".into();
            Resp::json(200, fw_json(&s))
        }
        _ => herr(405, "METHOD_NOT_ALLOWED", "Method not allowed"),
    }
}

fn rule(name: &str, proto: &str, port: &str) -> Map<String, Value> {
    let mut m = Map::new();
    for f in FIELDS {
        m.insert(f.into(), Value::Null);
    }
    m.insert("ip_version".into(), json!("ipv4"));
    m.insert("name".into(), json!(name));
    m.insert("protocol".into(), json!(proto));
    m.insert("dst_port".into(), json!(port));
    m.insert("action".into(), json!("accept"));
    m
}

fn start(setup: impl FnOnce(&mut Fw)) -> (TestServer, Arc<Mutex<Fw>>) {
    let mut out = Map::new();
    for f in FIELDS {
        out.insert(f.into(), Value::Null);
    }
    out.insert("name".into(), json!("Allow all"));
    out.insert("action".into(), json!("accept"));
    let mut fw = Fw {
        status: "active".into(),
        filter_ipv6: false,
        whitelist_hos: true,
        input: vec![rule("ssh", "tcp", "22"), rule("http", "tcp", "80")],
        output: vec![out],
    };
    setup(&mut fw);
    let st = Arc::new(Mutex::new(fw));
    let st2 = st.clone();
    (TestServer::start(move |r| handle(&st2, r)), st)
}

fn robot(srv: &TestServer, password: &str) -> HetznerRobot {
    HetznerRobot::new(
        "hetzner",
        Some(&srv.base),
        SERVER,
        "robot",
        &Secret::new(password),
        quick(),
    )
    .unwrap()
    .with_polling(Duration::from_millis(50), Duration::from_secs(5))
}

fn block(sources: &[&str]) -> ProviderAction {
    ProviderAction::BlockSources {
        sources: sources.iter().map(|s| s.parse().unwrap()).collect(),
        dst: Some("203.0.113.10/32".parse().unwrap()),
        protocol: Some(17),
        dst_ports: vec![53],
    }
}

#[test]
fn discard_rules_go_first_and_withdrawal_restores_the_configuration() {
    let (srv, st) = start(|_| {});
    let before = st.lock().unwrap().clone();
    let mut p = robot(&srv, "s3cr3t");
    let receipt = p
        .apply(&block(&["198.51.100.0/24", "192.0.2.7/32"]))
        .unwrap();
    assert_eq!(receipt.ids.len(), 2);
    {
        let s = st.lock().unwrap();
        assert_eq!(s.input.len(), 4);
        let first = &s.input[0];
        assert_eq!(first["action"], json!("discard"));
        assert_eq!(first["src_ip"], json!("198.51.100.0/24"));
        assert_eq!(first["dst_ip"], json!("203.0.113.10/32"));
        assert_eq!(first["protocol"], json!("udp"));
        assert_eq!(first["dst_port"], json!("53"));
        assert_eq!(s.input[1]["src_ip"], json!("192.0.2.7/32"));
        assert_eq!(&s.input[2..], &before.input[..]);
        assert_eq!(s.output, before.output);
    }
    // Applied while the firewall is still "in process": waits, then works.
    p.withdraw(&receipt).unwrap();
    let after = st.lock().unwrap().clone();
    assert_eq!(
        (after.input, after.output, after.whitelist_hos),
        (before.input, before.output, before.whitelist_hos)
    );
    // Withdrawing again changes nothing (no POST).
    let posts = srv.calls().iter().filter(|c| c.starts_with("POST")).count();
    p.withdraw(&receipt).unwrap();
    assert_eq!(
        srv.calls().iter().filter(|c| c.starts_with("POST")).count(),
        posts
    );
}

#[test]
fn limits_and_credentials_are_reported_clearly() {
    let (srv, st) = start(|_| {});
    let mut p = robot(&srv, "s3cr3t");
    let many: Vec<String> = (0..9).map(|i| format!("198.51.{i}.0/24")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let e = p.apply(&block(&many)).unwrap_err();
    assert!(
        e.to_string()
            .contains("9 sources need 9 rules but the firewall has 2 of its 10"),
        "{e}"
    );
    let e = p.apply(&block(&["2001:db8::/48"])).unwrap_err();
    assert!(e.to_string().contains("filter_ipv6"), "{e}");
    assert_eq!(st.lock().unwrap().input.len(), 2);

    let mut bad = robot(&srv, "wrong");
    match bad.apply(&block(&["198.51.100.0/24"])).unwrap_err() {
        ProviderError::Http {
            status: 401, code, ..
        } => assert_eq!(code.as_deref(), Some("UNAUTHORIZED")),
        other => panic!("{other:?}"),
    }
    let divert = ProviderAction::Divert {
        prefix: "203.0.113.0/24".parse().unwrap(),
    };
    assert!(matches!(
        p.apply(&divert),
        Err(ProviderError::Unsupported { .. })
    ));
}
