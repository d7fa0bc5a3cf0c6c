//! Incident capture files: their names, their directory (0750), and
//! retention (the oldest beyond `pcap_keep` are deleted), so a long series
//! of incidents cannot fill the disk.

use std::path::Path;

/// `<started_at without separators>-<incident id>.pcap`: sorts by time, and
/// the id ties the file to its events.
pub fn file_name(started_at: &str, incident_id: &str) -> String {
    let stamp: String = started_at
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let id: String = incident_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("{stamp}-{id}.pcap")
}

/// Creates the directory (mode 0750) if needed.
pub fn ensure_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .map_err(|e| format!("cannot create pcap directory {}: {e}", dir.display()))
}

/// Deletes the oldest `*.pcap` files beyond `keep` (by name: names start
/// with the incident's start time). Failures are logged, not fatal.
pub fn prune(dir: &Path, keep: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<std::path::PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    if names.len() <= keep {
        return;
    }
    names.sort();
    for old in &names[..names.len() - keep] {
        match std::fs::remove_file(old) {
            Ok(()) => tracing::info!(
                "deleted old incident pcap {} (pcap_keep {keep})",
                old.display()
            ),
            Err(e) => tracing::warn!("cannot delete old incident pcap {}: {e}", old.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time_and_carry_the_id() {
        let a = file_name(
            "2026-11-21T01:44:10.123Z",
            "0192f0c4-0000-7000-8000-000000000000",
        );
        assert_eq!(
            a,
            "20261121T014410123Z-0192f0c4-0000-7000-8000-000000000000.pcap"
        );
        let b = file_name("2026-11-21T01:44:11.000Z", "../../etc");
        assert!(a < b);
        assert!(!b.contains('/'));
    }

    #[test]
    fn prune_keeps_the_newest() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..5 {
            std::fs::write(d.path().join(format!("2026{i}-x.pcap")), b"x").unwrap();
        }
        std::fs::write(d.path().join("notes.txt"), b"x").unwrap();
        prune(d.path(), 2);
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["20263-x.pcap", "20264-x.pcap", "notes.txt"]);
    }
}
