//! `XdpExecutor`'s bookkeeping over the program's maps modelled in memory
//! (the crate's own oracle, `ModelMaps`): which entries a mitigation writes,
//! that its packets are dropped and counted under it, and that the program
//! is detached once the last mitigation goes. Runs without root; the lab
//! test (`lab.rs`) does the same on a real veth.

mod common;

use levee_mitigate::exec::{commands_text, Executor};
use levee_mitigate::{Action, Fragments, Match, RuleSpec};
use levee_packet::classify::{IpPrefix, PortMatch};
use levee_packet::TcpFlags;
use levee_xdp::{
    Counters, FingerprintMatch, ModelMaps, RuleId, RuleSet, Verdict, XdpBackend, XdpError,
    XdpExecutor,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

type Shared = Arc<Mutex<Option<RuleSet<ModelMaps>>>>;

#[derive(Clone, Default)]
struct ModelBackend {
    maps: Shared,
    log: Arc<Mutex<Vec<String>>>,
}

impl ModelBackend {
    fn with<T>(&self, f: impl FnOnce(&mut RuleSet<ModelMaps>) -> T) -> T {
        f(self.maps.lock().unwrap().as_mut().expect("attached"))
    }
}

impl XdpBackend for ModelBackend {
    fn attach(&mut self, ifname: &str) -> Result<(), XdpError> {
        self.log.lock().unwrap().push(format!("attach {ifname}"));
        *self.maps.lock().unwrap() = Some(RuleSet::new(ModelMaps::default())?);
        Ok(())
    }
    fn add_rule(&mut self, id: RuleId, m: &FingerprintMatch) -> Result<(), XdpError> {
        self.with(|r| r.add_rule(id, m))
    }
    fn add_source(&mut self, prefix: IpPrefix, id: RuleId) -> Result<(), XdpError> {
        self.with(|r| r.add_source(prefix, id))
    }
    fn remove(&mut self, id: RuleId) -> Result<(), XdpError> {
        self.with(|r| {
            let ps: Vec<_> = r
                .sources()
                .iter()
                .filter(|(_, o)| **o == id)
                .map(|(p, _)| *p)
                .collect();
            for p in ps {
                r.remove_source(p)?;
            }
            r.remove_rule(id).map(|_| ())
        })
    }
    fn counters(&self) -> Result<BTreeMap<RuleId, Counters>, XdpError> {
        match self.maps.lock().unwrap().as_ref() {
            Some(r) => r.counters(),
            None => Ok(BTreeMap::new()),
        }
    }
    fn holds(&self, id: RuleId) -> bool {
        self.maps.lock().unwrap().as_ref().is_some_and(|r| {
            r.rules().iter().any(|(x, _)| *x == id) || r.sources().values().any(|x| *x == id)
        })
    }
    fn close(&mut self) -> Result<(), XdpError> {
        self.log.lock().unwrap().push("close".into());
        *self.maps.lock().unwrap() = None;
        Ok(())
    }
    fn own_program(&self) -> Option<u32> {
        self.maps.lock().unwrap().as_ref().map(|_| 7)
    }
}

fn rule(action: Action, matches: Vec<Match>, sources: &[&str]) -> RuleSpec {
    RuleSpec {
        id: Uuid::now_v7(),
        incident_id: "inc".into(),
        action,
        matches,
        sources: sources.iter().map(|s| s.parse().unwrap()).collect(),
        interface: Some("veth0".into()),
        ttl: Duration::from_secs(60),
        expires_unix_ms: 0,
    }
}

fn syn_to_80() -> Match {
    let mut m = Match::to("10.0.0.2".parse().unwrap());
    m.protocol = Some(6);
    m.dst_ports = vec![PortMatch::Port(80)];
    m.tcp_flags = vec![TcpFlags(0x02)];
    m.fragments = Fragments::Unfragmented;
    m
}

fn frame(src: [u8; 4], proto: u8, dport: u16, flags: u8) -> Vec<u8> {
    common::build(&common::FrameSpec {
        tpids: vec![],
        ip: common::Ip::V4 {
            src,
            options_words: 0,
            frag: common::Frag::None,
        },
        ttl: 64,
        proto,
        len_field: common::LenField::Exact,
        sport: 40000,
        dport,
        tcp_flags: flags,
        icmp_type: 0,
        payload: 0,
        truncate: None,
    })
}

#[test]
fn mitigations_drop_count_and_detach_when_the_last_goes() {
    let backend = ModelBackend::default();
    let mut x = XdpExecutor::with_backend(Box::new(backend.clone()), &["veth0".into()]);
    let a = rule(Action::Drop, vec![syn_to_80()], &[]);
    let b = rule(
        Action::SourceBlock,
        vec![],
        &["203.0.113.0/24", "203.0.113.7/32"],
    );
    // The preview names every entry; the /32 inside the /24 is collapsed.
    assert_eq!(
        commands_text(&x.render(&b).unwrap()),
        format!("xdp veth0 drop-source 203.0.113.0/24 {}", b.comment())
    );
    let preview_a = commands_text(&x.render(&a).unwrap());
    assert!(preview_a.starts_with("xdp veth0 drop "), "{preview_a}");
    assert!(
        backend.log.lock().unwrap().is_empty(),
        "render touches nothing"
    );

    x.apply(&a).unwrap();
    x.apply(&b).unwrap();
    assert!(x.verify(&a).unwrap() && x.verify(&b).unwrap());
    let syn = frame([198, 51, 100, 1], 6, 80, 0x02);
    let ack = frame([198, 51, 100, 1], 6, 80, 0x10);
    let from_blocked = frame([203, 0, 113, 9], 17, 53, 0);
    backend.with(|r| {
        assert!(matches!(r.maps_mut().run(&syn), Verdict::Drop { .. }));
        assert!(matches!(r.maps_mut().run(&syn), Verdict::Drop { .. }));
        assert_eq!(r.maps_mut().run(&ack), Verdict::Pass);
        assert!(matches!(
            r.maps_mut().run(&from_blocked),
            Verdict::Drop { .. }
        ));
    });
    let c = x.counters().unwrap();
    assert_eq!(c[&a.id].packets, 2);
    assert_eq!(c[&b.id].packets, 1);

    x.remove(&a).unwrap();
    assert!(!x.verify(&a).unwrap());
    backend.with(|r| assert_eq!(r.maps_mut().run(&syn), Verdict::Pass));
    assert_eq!(backend.log.lock().unwrap().as_slice(), ["attach veth0"]);

    // Reconcile with no live mitigation removes the rest and detaches.
    let owned = x.owned().unwrap();
    assert_eq!(owned.len(), 1, "{owned:?}");
    assert_eq!(owned[0].owner, Some(b.id));
    x.remove_owned(&owned, &[]).unwrap();
    assert_eq!(
        backend.log.lock().unwrap().as_slice(),
        ["attach veth0", "close"]
    );
    assert!(backend.maps.lock().unwrap().is_none());
}

#[test]
fn a_failed_apply_leaves_nothing_behind() {
    let backend = ModelBackend::default();
    let mut x = XdpExecutor::with_backend(Box::new(backend.clone()), &["veth0".into()]);
    // More sources than fit after collapsing would fail midway; a rule for
    // another interface while attached fails before touching anything.
    let a = rule(Action::Drop, vec![syn_to_80()], &[]);
    x.apply(&a).unwrap();
    let mut other = rule(Action::Drop, vec![syn_to_80()], &[]);
    other.interface = Some("eth9".into());
    let err = x.apply(&other).unwrap_err().to_string();
    assert!(err.contains("attached to veth0"), "{err}");
    x.remove(&a).unwrap();
    assert!(backend.maps.lock().unwrap().is_none());
}
