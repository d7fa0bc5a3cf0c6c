//! F5 BIG-IP iControl REST as documented: token login at
//! `/mgmt/shared/authn/login` (username, password, loginProviderName),
//! `X-F5-Auth-Token` on every other call (401 when missing, unknown or
//! expired), AFM policy rules under
//! `/mgmt/tm/security/firewall/policy/~Partition~Name/rules` with checked
//! fields (name unique, action, ipProtocol, addresses, ports only for
//! tcp/udp, placeBefore/placeAfter), errors `{"code","message","errorStack","apiError"}`.

use crate::server::{quick, Req, Resp, TestServer};
use levee_providers::providers::f5::F5BigIp;
use levee_providers::secret::Secret;
use levee_providers::{Provider, ProviderAction, ProviderError};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

const RULES: &str = "/mgmt/tm/security/firewall/policy/~Common~edge/rules";

#[derive(Default)]
pub struct BigIp {
    pub tokens: BTreeSet<String>,
    pub rules: Vec<Value>,
    pub logins: u32,
}

fn ferr(code: u16, msg: &str) -> Resp {
    Resp::json(
        code,
        json!({"code": code, "message": msg, "errorStack": [], "apiError": 3}),
    )
}

fn check(b: &Value) -> Result<(), String> {
    let name = b["name"].as_str().ok_or("name is required")?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err(format!(
            "01070734:3: Configuration error: invalid rule name {name:?}"
        ));
    }
    if !matches!(
        b["action"].as_str(),
        Some("accept" | "accept-decisively" | "drop" | "reject")
    ) {
        return Err("01070734:3: Configuration error: invalid action".into());
    }
    let proto = b["ipProtocol"].as_str().unwrap_or("any");
    let known = ["any", "tcp", "udp", "icmp", "icmpv6", "gre", "esp", "ah"].contains(&proto)
        || proto.parse::<u8>().is_ok();
    if !known {
        return Err(format!(
            "01070734:3: Configuration error: invalid ipProtocol {proto}"
        ));
    }
    for side in ["source", "destination"] {
        for a in b[side]["addresses"].as_array().into_iter().flatten() {
            if a["name"]
                .as_str()
                .and_then(|s| s.parse::<ipnet::IpNet>().ok())
                .is_none()
            {
                return Err(format!(
                    "01070734:3: Configuration error: invalid {side} address {a}"
                ));
            }
        }
    }
    let ports = b["destination"]["ports"].as_array().map_or(0, Vec::len);
    if ports > 0 && !matches!(proto, "tcp" | "udp") {
        return Err("01071b4e:3: Ports can only be specified for TCP and UDP rules".into());
    }
    Ok(())
}

pub fn handle(st: &Mutex<BigIp>, r: &Req) -> Resp {
    let mut s = st.lock().unwrap();
    if r.is("POST", "/mgmt/shared/authn/login") {
        let Some(b) = r.json() else {
            return ferr(400, "Invalid JSON");
        };
        if b["username"] != json!("admin")
            || b["password"] != json!("f5-pass")
            || b["loginProviderName"] != json!("tmos")
        {
            return ferr(401, "Authentication failed.");
        }
        s.logins += 1;
        let t = format!("TOKEN{}", s.logins);
        s.tokens.insert(t.clone());
        return Resp::json(
            200,
            json!({"username": "admin", "token": {"token": t, "timeout": 1200, "userName": "admin"}}),
        );
    }
    match r.header("x-f5-auth-token") {
        Some(t) if s.tokens.contains(t) => {}
        Some(_) => return ferr(401, "X-F5-Auth-Token does not exist."),
        None => {
            return ferr(
                401,
                "Authorization failed: no user authentication header or token detected.",
            )
        }
    }
    if !r
        .path
        .starts_with("/mgmt/tm/security/firewall/policy/~Common~edge")
    {
        return ferr(404, "01020036:3: The requested Policy was not found.");
    }
    match (r.method.as_str(), r.path.strip_prefix(RULES)) {
        ("POST", Some("")) => {
            let Some(b) = r.json() else {
                return ferr(400, "Invalid JSON");
            };
            if let Err(m) = check(&b) {
                return ferr(400, &m);
            }
            if s.rules.iter().any(|x| x["name"] == b["name"]) {
                return ferr(409, &format!("01020066:3: The requested Rule ({}) already exists in Policy (/Common/edge).", b["name"]));
            }
            let mut rule = b.clone();
            rule.as_object_mut().unwrap().remove("placeBefore");
            rule.as_object_mut().unwrap().remove("placeAfter");
            if b["placeBefore"] == json!("first") {
                s.rules.insert(0, rule.clone());
            } else {
                s.rules.push(rule.clone());
            }
            Resp::json(200, rule)
        }
        ("DELETE", Some(rest)) if rest.starts_with('/') => {
            let name = &rest[1..];
            let before = s.rules.len();
            s.rules.retain(|x| x["name"] != json!(name));
            if s.rules.len() == before {
                return ferr(
                    404,
                    &format!("01020036:3: The requested Rule ({name}) was not found."),
                );
            }
            Resp::empty(200)
        }
        ("GET", Some("")) => Resp::json(
            200,
            json!({"kind": "tm:security:firewall:policy:rules:rulescollectionstate", "items": s.rules}),
        ),
        _ => ferr(404, "URI path not registered."),
    }
}

fn start() -> (TestServer, Arc<Mutex<BigIp>>) {
    let st = Arc::new(Mutex::new(BigIp {
        rules: vec![json!({"name": "allow_web", "action": "accept", "ipProtocol": "tcp"})],
        ..Default::default()
    }));
    let st2 = st.clone();
    (TestServer::start(move |r| handle(&st2, r)), st)
}

fn bigip(srv: &TestServer, password: &str) -> F5BigIp {
    F5BigIp::new(
        "f5",
        &srv.base,
        "/Common/edge",
        "admin",
        Secret::new(password),
        "tmos",
        quick(),
    )
    .unwrap()
}

fn block(proto: Option<u8>, ports: Vec<u16>) -> ProviderAction {
    ProviderAction::BlockSources {
        sources: vec![
            "198.51.100.0/24".parse().unwrap(),
            "192.0.2.7/32".parse().unwrap(),
        ],
        dst: Some("203.0.113.10/32".parse().unwrap()),
        protocol: proto,
        dst_ports: ports,
    }
}

#[test]
fn a_drop_rule_goes_first_and_is_removed() {
    let (srv, st) = start();
    let mut p = bigip(&srv, "f5-pass");
    let r = p.apply(&block(Some(17), vec![53])).unwrap();
    {
        let s = st.lock().unwrap();
        assert_eq!(s.rules.len(), 2);
        let rule = &s.rules[0];
        assert_eq!(rule["name"], json!(r.ids[0]));
        assert_eq!(rule["action"], json!("drop"));
        assert_eq!(rule["ipProtocol"], json!("udp"));
        assert_eq!(
            rule["source"]["addresses"],
            json!([{"name": "198.51.100.0/24"}, {"name": "192.0.2.7/32"}])
        );
        assert_eq!(
            rule["destination"],
            json!({"addresses": [{"name": "203.0.113.10/32"}], "ports": [{"name": "53"}]})
        );
    }
    p.withdraw(&r).unwrap();
    p.withdraw(&r).unwrap();
    assert_eq!(
        st.lock().unwrap().rules,
        vec![json!({"name": "allow_web", "action": "accept", "ipProtocol": "tcp"})]
    );
    assert_eq!(st.lock().unwrap().logins, 1, "the token is reused");
}

#[test]
fn an_expired_token_is_renewed_and_bad_passwords_are_reported() {
    let (srv, st) = start();
    let mut p = bigip(&srv, "f5-pass");
    let r = p.apply(&block(None, vec![])).unwrap();
    assert_eq!(st.lock().unwrap().rules[0]["ipProtocol"], json!("any"));
    assert!(st.lock().unwrap().rules[0]["destination"]
        .get("ports")
        .is_none());
    st.lock().unwrap().tokens.clear();
    p.withdraw(&r).unwrap();
    assert_eq!(st.lock().unwrap().logins, 2);
    assert_eq!(st.lock().unwrap().rules.len(), 1);

    match bigip(&srv, "wrong")
        .apply(&block(Some(6), vec![443]))
        .unwrap_err()
    {
        ProviderError::Http {
            status: 401,
            message,
            ..
        } => assert_eq!(message, "Authentication failed."),
        other => panic!("{other:?}"),
    }
    let mut missing = F5BigIp::new(
        "f5",
        &srv.base,
        "/Common/nope",
        "admin",
        Secret::new("f5-pass"),
        "tmos",
        quick(),
    )
    .unwrap();
    let e = missing.apply(&block(Some(6), vec![443])).unwrap_err();
    assert!(
        e.to_string().contains("The requested Policy was not found"),
        "{e}"
    );
    assert!(F5BigIp::new(
        "f5",
        &srv.base,
        "edge",
        "admin",
        Secret::new("x"),
        "tmos",
        quick()
    )
    .is_err());
}
