//! APSolute Vision REST for DefensePro as Radware's users document it:
//! login giving a JSESSIONID (sent as a cookie), device lock required for
//! configuration writes, network class rows (`rsBWMNetworkTable/{class}/{i}`,
//! address and mask checked), block-list rules (`rsNewBlockListTable/{name}`)
//! whose networks must exist, duplicate keys refused (M_00386), changes
//! active only after `updatepolicies`; errors `{"status":"error","message"}`.

use crate::server::{quick, Req, Resp, TestServer};
use levee_providers::providers::radware::DefensePro;
use levee_providers::secret::Secret;
use levee_providers::{Provider, ProviderAction, ProviderError};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

const DP: &str = "10.1.1.1";

#[derive(Default, Clone, PartialEq, Debug)]
pub struct Config {
    /// (class, index) -> (address, mask)
    pub classes: BTreeMap<(String, String), (String, String)>,
    /// name -> (src, dst)
    pub blocklist: BTreeMap<String, (String, String)>,
}

#[derive(Default)]
pub struct Vision {
    pub sessions: BTreeSet<String>,
    pub locked: bool,
    pub pending: Config,
    /// What the device enforces (after updatepolicies).
    pub active: Config,
    pub fail_blocklist: bool,
}

fn rerr(status: u16, msg: &str) -> Resp {
    Resp::json(status, json!({"status": "error", "message": msg}))
}

fn ok() -> Resp {
    Resp::json(200, json!({"status": "ok"}))
}

pub fn handle(st: &Mutex<Vision>, r: &Req) -> Resp {
    let mut s = st.lock().unwrap();
    if r.is("POST", "/mgmt/system/user/login") {
        let b = r.json().unwrap_or(Value::Null);
        if b["username"] != json!("radware") || b["password"] != json!("rw-pass") {
            return rerr(401, "M_00002: Login failed: wrong user name or password.");
        }
        let sid = format!("SID{}", s.sessions.len() + 1);
        s.sessions.insert(sid.clone());
        return Resp::json(200, json!({"status": "ok", "jsessionid": sid}));
    }
    let session = r
        .header("cookie")
        .and_then(|c| c.split("; ").find_map(|kv| kv.strip_prefix("JSESSIONID=")))
        .map(str::to_string);
    if !session.is_some_and(|sid| s.sessions.contains(&sid)) {
        return rerr(401, "M_00012: Session is not authenticated. Please log in.");
    }
    let lock_base = format!("/mgmt/system/config/tree/device/byip/{DP}/");
    if let Some(verb) = r.path.strip_prefix(&lock_base) {
        return match (r.method.as_str(), verb) {
            ("POST", "lock") => {
                s.locked = true;
                ok()
            }
            ("POST", "unlock") => {
                s.locked = false;
                ok()
            }
            _ => rerr(404, "Not found"),
        };
    }
    let Some(rest) = r
        .path
        .strip_prefix(&format!("/mgmt/device/byip/{DP}/config/"))
    else {
        return rerr(404, "M_00001: Device not found");
    };
    if r.method != "GET" && !s.locked {
        return rerr(
            403,
            "M_00229: The device must be locked before its configuration is changed.",
        );
    }
    let seg: Vec<&str> = rest.split('/').collect();
    match (r.method.as_str(), seg.as_slice()) {
        ("POST", ["updatepolicies"]) => {
            s.active = s.pending.clone();
            ok()
        }
        ("POST", ["rsBWMNetworkTable", class, idx]) => {
            let b = r.json().unwrap_or(Value::Null);
            let addr = b["rsBWMNetworkAddress"].as_str().unwrap_or("");
            let mask = b["rsBWMNetworkMask"].as_str().unwrap_or("");
            let ok_net = addr.parse::<std::net::IpAddr>().is_ok_and(|a| {
                mask.parse::<u8>()
                    .is_ok_and(|m| m <= if a.is_ipv4() { 32 } else { 128 })
            });
            if !ok_net {
                return rerr(400, "M_00345: Invalid network address or mask.");
            }
            let key = (class.to_string(), idx.to_string());
            if s.pending.classes.contains_key(&key) {
                return rerr(400, "M_00386: An entry with same key already exists.");
            }
            s.pending.classes.insert(key, (addr.into(), mask.into()));
            ok()
        }
        ("DELETE", ["rsBWMNetworkTable", class, idx]) => {
            match s
                .pending
                .classes
                .remove(&(class.to_string(), idx.to_string()))
            {
                Some(_) => ok(),
                None => rerr(404, "M_00387: Entry not found."),
            }
        }
        ("POST", ["rsNewBlockListTable", name]) => {
            if s.fail_blocklist {
                return Resp::json(
                    200,
                    json!({"status": "error", "message": "M_01234: Block list table is full."}),
                );
            }
            let b = r.json().unwrap_or(Value::Null);
            let src = b["rsNewBlockListSrcNetwork"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let dst = b["rsNewBlockListDstNetwork"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let exists = |c: &str| c == "any" || s.pending.classes.keys().any(|(k, _)| k == c);
            if !exists(&src) || !exists(&dst) {
                return rerr(400, "M_00417: The network class does not exist.");
            }
            if s.pending.blocklist.contains_key(*name) {
                return rerr(400, "M_00386: An entry with same key already exists.");
            }
            s.pending.blocklist.insert(name.to_string(), (src, dst));
            ok()
        }
        ("DELETE", ["rsNewBlockListTable", name]) => match s.pending.blocklist.remove(*name) {
            Some(_) => ok(),
            None => rerr(404, "M_00387: Entry not found."),
        },
        _ => rerr(404, "Not found"),
    }
}

fn start() -> (TestServer, Arc<Mutex<Vision>>) {
    let st = Arc::new(Mutex::new(Vision::default()));
    let st2 = st.clone();
    (TestServer::start(move |r| handle(&st2, r)), st)
}

fn dp(srv: &TestServer, pw: &str) -> DefensePro {
    DefensePro::new("dp", &srv.base, DP, "radware", Secret::new(pw), quick()).unwrap()
}

fn block() -> ProviderAction {
    ProviderAction::BlockSources {
        sources: vec![
            "198.51.100.0/24".parse().unwrap(),
            "192.0.2.7/32".parse().unwrap(),
        ],
        dst: Some("203.0.113.10/32".parse().unwrap()),
        protocol: Some(17),
        dst_ports: vec![53],
    }
}

#[test]
fn a_block_list_rule_becomes_active_and_is_removed() {
    let (srv, st) = start();
    let mut p = dp(&srv, "rw-pass");
    let r = p.apply(&block()).unwrap();
    {
        let s = st.lock().unwrap();
        assert!(!s.locked, "the device is unlocked again");
        assert_eq!(s.active.blocklist.len(), 1);
        let (name, (src, dst)) = s.active.blocklist.iter().next().unwrap();
        assert_eq!(src, name);
        assert_eq!(dst, &format!("{name}_d"));
        let rows: Vec<(String, String)> = s
            .active
            .classes
            .iter()
            .filter(|((c, _), _)| c == name)
            .map(|(_, v)| v.clone())
            .collect();
        assert_eq!(
            rows,
            vec![
                ("198.51.100.0".to_string(), "24".to_string()),
                ("192.0.2.7".to_string(), "32".to_string())
            ]
        );
    }
    p.withdraw(&r).unwrap();
    p.withdraw(&r).unwrap();
    let s = st.lock().unwrap();
    assert_eq!(s.active, Config::default());
    assert!(!s.locked);
}

#[test]
fn a_failure_part_way_is_undone_and_credentials_are_checked() {
    let (srv, st) = start();
    st.lock().unwrap().fail_blocklist = true;
    let mut p = dp(&srv, "rw-pass");
    let e = p.apply(&block()).unwrap_err();
    match &e {
        ProviderError::Http { code, message, .. } => {
            assert!(
                message.starts_with("M_01234: Block list table is full"),
                "{message}"
            );
            assert_eq!(code, &None);
        }
        other => panic!("{other:?}"),
    }
    {
        let s = st.lock().unwrap();
        assert_eq!(
            s.pending,
            Config::default(),
            "classes created before the failure were removed"
        );
        assert!(!s.locked);
    }
    match dp(&srv, "wrong").apply(&block()).unwrap_err() {
        ProviderError::Http {
            status: 401,
            message,
            ..
        } => assert!(message.contains("Login failed"), "{message}"),
        other => panic!("{other:?}"),
    }
}
