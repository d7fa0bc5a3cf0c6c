//! IocStore reload: atomic swap, and a failing file keeps the previous list.

use std::net::IpAddr;
use std::path::Path;

use levee_ioc::{Format, IocStore, ListError, ListOutcome, ListSource};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write fixture");
}

fn lists_of(store: &IocStore, addr: &str) -> Vec<String> {
    store
        .current()
        .lookup(ip(addr))
        .map(|m| m.list.to_owned())
        .collect()
}

fn setup(dir: &Path) -> IocStore {
    write(
        &dir.join("drop.txt"),
        "; Spamhaus DROP\n1.10.16.0/20 ; SBL256894\n",
    );
    write(&dir.join("own.txt"), "198.51.100.7\n");
    let sources = vec![
        ListSource {
            name: "drop".into(),
            path: dir.join("drop.txt"),
            format: Format::SpamhausDrop,
        },
        ListSource {
            name: "own".into(),
            path: dir.join("own.txt"),
            format: Format::Auto,
        },
    ];
    let (store, report) = IocStore::open(sources).expect("unique names");
    assert!(report.is_ok(), "{report:?}");
    store
}

#[test]
fn reload_picks_up_new_contents_and_swaps_atomically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = setup(dir.path());
    let before = store.current();
    write(&dir.path().join("own.txt"), "203.0.113.9\n");
    let report = store.reload();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(lists_of(&store, "203.0.113.9"), ["own"]);
    assert!(lists_of(&store, "198.51.100.7").is_empty());
    // A reader holding the old set keeps a complete, consistent view.
    assert_eq!(before.lookup(ip("198.51.100.7")).count(), 1);
    assert_eq!(before.lookup(ip("203.0.113.9")).count(), 0);
}

#[test]
fn unreadable_file_keeps_previous_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = setup(dir.path());
    std::fs::remove_file(dir.path().join("drop.txt")).expect("remove");
    write(&dir.path().join("own.txt"), "203.0.113.9\n");
    let report = store.reload();
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, "drop");
    assert!(matches!(failures[0].1, ListError::Io { .. }));
    assert!(failures[0].1.to_string().contains("drop.txt"));
    // The old drop list (with its note) is still in force; the other list reloaded.
    let set = store.current();
    let m: Vec<_> = set.lookup(ip("1.10.16.1")).collect();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].note, Some("SBL256894"));
    assert_eq!(lists_of(&store, "203.0.113.9"), ["own"]);
}

#[test]
fn corrupt_or_emptied_file_keeps_previous_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = setup(dir.path());
    write(
        &dir.path().join("own.txt"),
        "<html>\n<body>502 Bad Gateway</body>\n</html>\n",
    );
    write(&dir.path().join("drop.txt"), "; Spamhaus DROP\n");
    let report = store.reload();
    let failures: Vec<_> = report
        .failures()
        .map(|(n, e)| (n.to_owned(), e.to_string()))
        .collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].1.contains("empty"), "{failures:?}");
    assert!(failures[1].1.contains("corrupt"), "{failures:?}");
    assert!(failures[1].1.contains("own.txt:1"), "{failures:?}");
    assert_eq!(lists_of(&store, "198.51.100.7"), ["own"]);
    assert_eq!(lists_of(&store, "1.10.16.1"), ["drop"]);
    let kept: Vec<usize> = report
        .lists
        .iter()
        .filter_map(|l| match l.outcome {
            ListOutcome::KeptPrevious { kept, .. } => Some(kept),
            ListOutcome::Loaded(_) => None,
        })
        .collect();
    assert_eq!(kept, [1, 1]);

    // A later good file replaces the kept version.
    write(&dir.path().join("own.txt"), "192.0.2.1\n");
    let report = store.reload();
    // drop.txt is still emptied, so only that list keeps its old version.
    let failed: Vec<&str> = report.failures().map(|(n, _)| n).collect();
    assert_eq!(failed, ["drop"]);
    assert_eq!(lists_of(&store, "192.0.2.1"), ["own"]);
    assert!(lists_of(&store, "198.51.100.7").is_empty());
}

#[test]
fn first_load_failure_starts_empty_and_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sources = vec![ListSource {
        name: "missing".into(),
        path: dir.path().join("missing.txt"),
        format: Format::Auto,
    }];
    let (store, report) = IocStore::open(sources).expect("unique names");
    assert!(!report.is_ok());
    assert!(store.current().is_empty());
    write(&dir.path().join("missing.txt"), "192.0.2.1\n");
    assert!(store.reload().is_ok());
    assert_eq!(lists_of(&store, "192.0.2.1"), ["missing"]);
}
