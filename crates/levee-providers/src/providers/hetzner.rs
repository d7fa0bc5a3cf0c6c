//! Hetzner Robot firewall (dedicated servers): discard the attack's
//! sources in the stateless firewall in front of the server's switch port.
//!
//! Contract (Robot webservice, <https://robot.hetzner.com/doc/webservice/en.html#firewall>):
//! - base `https://robot-ws.your-server.de`, HTTP basic authentication
//!   with the webservice user;
//! - `GET /firewall/{server-id}`: `{"firewall":{"status","filter_ipv6",
//!   "whitelist_hos","port","rules":{"input":[..],"output":[..]}}}`,
//!   each rule `{ip_version,name,dst_ip,src_ip,dst_port,src_port,protocol,
//!   tcp_flags,action}`;
//! - `POST /firewall/{server-id}`, form-encoded, replaces the whole
//!   configuration: `status`, `filter_ipv6`, `whitelist_hos`,
//!   `rules[input][N][field]=...` (and `rules[output]`); at most 10 input
//!   rules; answers the firewall with `status: "in process"` while the
//!   switch is programmed, and refuses another change meanwhile
//!   (409 `FIREWALL_IN_PROCESS`);
//! - errors: `{"error":{"status","code","message"}}`.
//!
//! Levee's rules go first (a stateless firewall takes the first match),
//! named `levee-<tag>-<n>` so the receipt can find and remove exactly
//! them; everything else is posted back unchanged. Several destination
//! ports cannot share one rule, so such a block drops the port condition
//! (the sources are blocked on every port). IPv6 sources need
//! `filter_ipv6` already on: turning it on would change how all of the
//! server's IPv6 traffic is filtered.

use crate::action::{protocol_name, Block, ProviderAction, Receipt};
use crate::error::ProviderError;
use crate::http::{generic_error, Call, Http, HttpConfig};
use crate::secret::{Secret, SecretRef};
use crate::{block_of, check_receipt, Provider};
use base64::Engine;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

pub const KIND: &str = "hetzner_robot";
pub const DEFAULT_BASE: &str = "https://robot-ws.your-server.de";
/// Robot's limit of input rules.
pub const MAX_INPUT_RULES: usize = 10;

/// `kind = "hetzner_robot"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The server number (`server_number` in Robot).
    pub server_number: u64,
    pub user: String,
    pub password: SecretRef,
}

/// One firewall rule as Robot reads and writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default)]
    pub ip_version: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub dst_ip: Option<String>,
    #[serde(default)]
    pub src_ip: Option<String>,
    #[serde(default)]
    pub dst_port: Option<String>,
    #[serde(default)]
    pub src_port: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub tcp_flags: Option<String>,
    pub action: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Firewall {
    pub status: String,
    #[serde(default)]
    pub filter_ipv6: bool,
    #[serde(default)]
    pub whitelist_hos: bool,
    pub rules: Rules,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Rules {
    #[serde(default)]
    pub input: Vec<Rule>,
    #[serde(default)]
    pub output: Vec<Rule>,
}

#[derive(Deserialize)]
struct Wrapper {
    firewall: Firewall,
}

pub struct HetznerRobot {
    name: String,
    http: Http,
    server: u64,
    auth: String,
    poll: Duration,
    settle: Duration,
}

impl HetznerRobot {
    pub fn new(
        name: &str,
        base_url: Option<&str>,
        server_number: u64,
        user: &str,
        password: &Secret,
        cfg: HttpConfig,
    ) -> Result<Self, ProviderError> {
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", password.expose()))
        );
        Ok(HetznerRobot {
            name: name.to_string(),
            http: Http::new(name, base_url.unwrap_or(DEFAULT_BASE), cfg, generic_error)?,
            server: server_number,
            auth,
            poll: Duration::from_secs(3),
            settle: Duration::from_secs(120),
        })
    }

    /// How often and how long to wait for a firewall "in process".
    pub fn with_polling(mut self, poll: Duration, settle: Duration) -> Self {
        self.poll = poll;
        self.settle = settle;
        self
    }

    fn send(&self, call: &Call) -> Result<crate::http::Answer, ProviderError> {
        self.http.send_with(call, "Authorization", &self.auth)
    }

    /// The firewall once it is not being processed.
    fn settled(&self) -> Result<Firewall, ProviderError> {
        let path = format!("/firewall/{}", self.server);
        let deadline = Instant::now() + self.settle;
        loop {
            let a = self.send(&Call::get(&path))?;
            let w: Wrapper = a.json(&self.name, &self.http.url(&path))?;
            if w.firewall.status != "in process" {
                return Ok(w.firewall);
            }
            if Instant::now() >= deadline {
                return Err(ProviderError::invalid(
                    &self.name,
                    format!(
                        "firewall of server {} still \"in process\" after {:?}; try again later",
                        self.server, self.settle
                    ),
                ));
            }
            std::thread::sleep(self.poll);
        }
    }

    fn post(&self, fw: &Firewall, input: &[Rule]) -> Result<(), ProviderError> {
        let body = form(fw, input);
        // A whole-configuration replace: sending it twice is sending it once.
        let call = Call::new(Method::POST, format!("/firewall/{}", self.server))
            .form(body)
            .idempotent();
        self.send(&call).map(|_| ())
    }
}

/// The form body of a whole configuration.
pub fn form(fw: &Firewall, input: &[Rule]) -> String {
    let status = if fw.status == "disabled" {
        "disabled"
    } else {
        "active"
    };
    let mut f = form_urlencoded::Serializer::new(String::new());
    f.append_pair("status", status);
    f.append_pair("filter_ipv6", &fw.filter_ipv6.to_string());
    f.append_pair("whitelist_hos", &fw.whitelist_hos.to_string());
    for (dir, rules) in [("input", input), ("output", fw.rules.output.as_slice())] {
        for (i, r) in rules.iter().enumerate() {
            let fields = [
                ("ip_version", &r.ip_version),
                ("name", &r.name),
                ("dst_ip", &r.dst_ip),
                ("src_ip", &r.src_ip),
                ("dst_port", &r.dst_port),
                ("src_port", &r.src_port),
                ("protocol", &r.protocol),
                ("tcp_flags", &r.tcp_flags),
            ];
            for (k, v) in fields {
                if let Some(v) = v {
                    f.append_pair(&format!("rules[{dir}][{i}][{k}]"), v);
                }
            }
            f.append_pair(&format!("rules[{dir}][{i}][action]"), &r.action);
        }
    }
    f.finish()
}

fn tag() -> String {
    hex::encode(rand::random::<[u8; 3]>())
}

impl Provider for HetznerRobot {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&mut self, action: &ProviderAction) -> Result<Receipt, ProviderError> {
        let Block {
            sources,
            dst,
            protocol,
            dst_ports,
        } = block_of(&self.name, KIND, action)?;
        let fw = self.settled()?;
        if fw.status == "disabled" {
            return Err(ProviderError::invalid(
                &self.name,
                format!(
                    "the firewall of server {} is disabled; enable it in Robot first",
                    self.server
                ),
            ));
        }
        if sources.iter().any(|s| s.addr().is_ipv6()) && !fw.filter_ipv6 {
            return Err(ProviderError::invalid(
                &self.name,
                "IPv6 sources need the firewall's IPv6 filtering (filter_ipv6) on; turn it on in Robot first",
            ));
        }
        let free = MAX_INPUT_RULES.saturating_sub(fw.rules.input.len());
        if sources.len() > free {
            return Err(ProviderError::invalid(
                &self.name,
                format!(
                    "{} sources need {} rules but the firewall has {} of its {MAX_INPUT_RULES} input rules in use",
                    sources.len(),
                    sources.len(),
                    fw.rules.input.len()
                ),
            ));
        }
        let proto = protocol.map(|p| {
            protocol_name(p)
                .map(str::to_string)
                .ok_or_else(|| ProviderError::Unsupported {
                    provider: self.name.clone(),
                    kind: KIND,
                    what: format!("match IP protocol {p}"),
                    why: "Robot rules name tcp, udp, icmp, gre, esp or ah".into(),
                })
        });
        let proto = proto.transpose()?;
        let port = match (dst_ports, proto.as_deref()) {
            ([p], Some("tcp" | "udp")) => Some(p.to_string()),
            _ => None,
        };
        let t = tag();
        let ours: Vec<Rule> = sources
            .iter()
            .enumerate()
            .map(|(i, s)| Rule {
                ip_version: Some(if s.addr().is_ipv4() { "ipv4" } else { "ipv6" }.to_string()),
                name: Some(format!("levee-{t}-{i}")),
                dst_ip: dst
                    .filter(|d| d.addr().is_ipv4() == s.addr().is_ipv4())
                    .map(|d| d.to_string()),
                src_ip: Some(s.trunc().to_string()),
                dst_port: port.clone(),
                src_port: None,
                protocol: proto.clone(),
                tcp_flags: None,
                action: "discard".to_string(),
            })
            .collect();
        let names: Vec<String> = ours.iter().filter_map(|r| r.name.clone()).collect();
        let mut input = ours;
        input.extend(fw.rules.input.iter().cloned());
        self.post(&fw, &input)?;
        Ok(Receipt::new(&self.name, action, names))
    }

    fn withdraw(&mut self, receipt: &Receipt) -> Result<(), ProviderError> {
        check_receipt(&self.name, receipt)?;
        let fw = self.settled()?;
        let mine = |r: &Rule| r.name.as_ref().is_some_and(|n| receipt.ids.contains(n));
        if !fw.rules.input.iter().any(mine) {
            return Ok(());
        }
        let input: Vec<Rule> = fw
            .rules
            .input
            .iter()
            .filter(|r| !mine(r))
            .cloned()
            .collect();
        self.post(&fw, &input)
    }
}
