//! The CSF executor against CSF's documented command line. CSF is not
//! packaged for Debian, so `tests/fixtures/fake-csf` stands in for it: a
//! script that accepts exactly the documented syntax of `csf -v`,
//! `csf -td ip ttl [-p port] [-d direction] [comment]`, `csf -trd ip` and
//! `csf -t` (refusing anything else), keeps state in a file and expires
//! temporary entries at their TTL as lfd does. See the script's header and
//! `levee_mitigate::exec::csf` for the documentation followed.

use levee_mitigate::exec::csf::CsfExecutor;
use levee_mitigate::exec::{Availability, Executor};
use levee_mitigate::runner::SystemRunner;
use levee_mitigate::{Action, Match, RuleSpec};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn fake_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A runner whose `csf` is the fake (linked into `dir`), with its state file.
fn runner(state: &std::path::Path) -> SystemRunner {
    let bin = state.parent().unwrap().join("bin");
    if !bin.exists() {
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(fake_dir().join("fake-csf"), bin.join("csf")).unwrap();
    }
    let path = format!("{}:/usr/bin:/bin", bin.display());
    SystemRunner::with_prefix([
        "env",
        &format!("PATH={path}"),
        &format!("CSF_FAKE_STATE={}", state.display()),
    ])
}

fn rule(ttl: Duration, sources: &[&str]) -> RuleSpec {
    RuleSpec {
        id: Uuid::now_v7(),
        incident_id: "csf".into(),
        action: Action::SourceBlock,
        matches: vec![Match::to("10.0.0.2".parse().unwrap())],
        sources: sources.iter().map(|s| s.parse().unwrap()).collect(),
        interface: None,
        ttl,
        expires_unix_ms: 0,
    }
}

#[test]
fn csf_executor_follows_the_documented_cli() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("csf.state");
    let mut e = CsfExecutor::csf(Box::new(runner(&state)));
    assert_eq!(e.availability(), Availability::Ready);
    let r = rule(
        Duration::from_secs(600),
        &["203.0.113.0/24", "198.51.100.7/32"],
    );
    let cmds: Vec<String> = e
        .render(&r)
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        cmds[0],
        format!("csf -td 203.0.113.0/24 600 -d in levee:{}", r.id)
    );
    assert_eq!(
        cmds[1],
        format!("csf -td 198.51.100.7 600 -d in levee:{}", r.id)
    );
    e.apply(&r).unwrap();
    assert!(e.verify(&r).unwrap());
    let listed = std::fs::read_to_string(&state).unwrap();
    assert_eq!(listed.lines().count(), 2, "{listed}");
    e.refresh(&r).unwrap();
    assert!(e.verify(&r).unwrap());
    e.remove(&r).unwrap();
    assert!(!e.verify(&r).unwrap());
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "");
}

#[test]
fn csf_forgets_a_temporary_deny_at_its_ttl_and_reconcile_finds_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("csf.state");
    let mut e = CsfExecutor::csf(Box::new(runner(&state)));
    let short = rule(Duration::from_secs(1), &["203.0.113.0/24"]);
    let long = rule(Duration::from_secs(600), &["198.51.100.0/24"]);
    e.apply(&short).unwrap();
    e.apply(&long).unwrap();
    let t = Instant::now();
    while e.verify(&short).unwrap() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the 1 s deny outlived its TTL"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A restarted agent knows no live mitigation: the other deny is an orphan.
    let mut fresh = CsfExecutor::csf(Box::new(runner(&state)));
    let owned = fresh.owned().unwrap();
    assert_eq!(owned.len(), 1, "{owned:#?}");
    assert_eq!(owned[0].owner, Some(long.id));
    assert!(!owned[0].backed_by(&[]));
    fresh.remove_owned(&owned, &[]).unwrap();
    assert!(fresh.owned().unwrap().is_empty());
}

#[test]
fn bad_input_is_refused_by_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("csf.state");
    let mut r = runner(&state);
    use levee_mitigate::runner::{Cmd, CommandRunner};
    for bad in [
        vec!["-td", "1.2.3", "60"],
        vec!["-td", "1.2.3.4", "5x"],
        vec!["-td", "1.2.3.4", "5", "-d", "sideways"],
        vec!["-x"],
    ] {
        let out = r.run(&Cmd::new("csf", bad.clone())).unwrap();
        assert_eq!(out.status, 1, "{bad:?} was accepted: {out:?}");
    }
    // An IPv6 source with an IPv4 target is still a valid CSF deny (CSF's
    // temporary denies cannot name a destination).
    let mut e = CsfExecutor::csf(Box::new(runner(&state)));
    let six = rule(Duration::from_secs(60), &["2001:db8::/48"]);
    e.apply(&six).unwrap();
    assert!(e.verify(&six).unwrap());
}
