//! The audit trail: an append-only file of JSON lines, one per mitigation
//! step (previewed, applied, verified, rolled back, expired, failed,
//! reconciled), each carrying `prev`, the SHA-256 of the previous line's
//! exact bytes (64 zeros for the first), and `seq`, its 1-based position.
//!
//! Changing, inserting or deleting a line breaks the chain at the next
//! line, and [`verify`] names the first broken entry. Cutting lines off the
//! end cannot be seen from the file alone (nothing follows them); the
//! `mitigation_*` events, which the agent also prints and ships, are the
//! independent record of what happened last.
//!
//! A line cut short by a crash stays in place (it is never rewritten:
//! the file is append-only); the next entry starts on a new line and
//! chains to it, and `verify` reports the damaged line.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What one entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// `previewed`, `applied`, `verified`, `rolled_back`, `expired`,
    /// `failed`, `reconciled`.
    pub step: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mitigation_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub incident_id: String,
    pub executor: String,
    /// The exact rule text (previewed/applied) or what was removed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rule: String,
    /// Why (rolled back, failed, expired).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub ts: String,
    pub prev: String,
    #[serde(flatten)]
    pub record: AuditRecord,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source} (check the directory exists and is writable, or set [mitigation] audit_file)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The SHA-256 of `line` (without its newline), lowercase hex.
pub fn hash_line(line: &[u8]) -> String {
    let d = Sha256::digest(line);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// An open audit log, positioned at its end.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    prev: String,
    seq: u64,
}

impl AuditLog {
    /// Opens (creating) `path` for appending and picks up the chain from its
    /// last line.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let (last, complete, lines) = last_line(&mut file).map_err(io)?;
        let (prev, seq) = match last {
            None => (GENESIS.to_string(), 0),
            Some(line) => {
                let seq = serde_json::from_slice::<AuditEntry>(&line)
                    .map(|e| e.seq)
                    .unwrap_or(lines);
                (hash_line(&line), seq)
            }
        };
        if !complete {
            // A torn last line (crash mid-write): start the next one afresh.
            file.write_all(b"\n").map_err(io)?;
        }
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
            prev,
            seq,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry (flushed to disk before returning).
    pub fn append(&mut self, unix_ms: i64, record: AuditRecord) -> Result<AuditEntry, AuditError> {
        let entry = AuditEntry {
            seq: self.seq + 1,
            ts: levee_model::timefmt::rfc3339_millis(unix_ms),
            prev: self.prev.clone(),
            record,
        };
        // Plain data with string keys always serialises.
        let line = serde_json::to_string(&entry).expect("audit entry serialises");
        let mut buf = line.clone().into_bytes();
        buf.push(b'\n');
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&buf).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.prev = hash_line(line.as_bytes());
        self.seq += 1;
        Ok(entry)
    }
}

/// The last line of `file` (without newline), whether it ended with a
/// newline, and how many lines there are.
fn last_line(file: &mut File) -> std::io::Result<(Option<Vec<u8>>, bool, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    if data.is_empty() {
        return Ok((None, true, 0));
    }
    let complete = data.ends_with(b"\n");
    let body = if complete {
        &data[..data.len() - 1]
    } else {
        &data[..]
    };
    let lines = body.split(|b| *b == b'\n').count() as u64;
    let last = body.rsplit(|b| *b == b'\n').next().unwrap_or(&[]).to_vec();
    Ok((Some(last), complete, lines))
}

/// The first broken entry of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// 1-based line number.
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entry on line {}: {}", self.line, self.reason)
    }
}

/// Checks a whole log: every line parses, `seq` counts up from 1, and
/// `prev` is the hash of the line before. `Ok(n)`: n entries, all intact.
pub fn verify(reader: impl Read) -> Result<Result<u64, Broken>, std::io::Error> {
    let mut prev = GENESIS.to_string();
    let mut n = 0u64;
    let mut r = BufReader::new(reader);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if r.read_until(b'\n', &mut raw)? == 0 {
            break;
        }
        n += 1;
        let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let broken = |reason: String| Ok(Err(Broken { line: n, reason }));
        let entry: AuditEntry = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(e) => {
                return broken(format!(
                    "not an audit entry ({e}); the line was altered or cut short"
                ))
            }
        };
        if entry.prev != prev {
            return broken(format!(
                "prev is {} but the line before hashes to {prev}: this entry or the one before was altered, inserted or removed",
                entry.prev
            ));
        }
        if entry.seq != n {
            return broken(format!(
                "seq is {} where {n} was expected: entries were removed or reordered",
                entry.seq
            ));
        }
        prev = hash_line(line);
    }
    Ok(Ok(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(step: &str) -> AuditRecord {
        AuditRecord {
            step: step.into(),
            mitigation_id: "m1".into(),
            incident_id: "i1".into(),
            executor: "nftables".into(),
            rule: "nft -f - <<'EOF'\nadd table inet levee\nEOF".into(),
            reason: String::new(),
        }
    }

    fn write_log(dir: &Path, n: usize) -> PathBuf {
        let p = dir.join("audit.jsonl");
        let mut log = AuditLog::open(&p).unwrap();
        for i in 0..n {
            log.append(
                1_795_225_450_000 + i as i64,
                rec(if i % 2 == 0 { "applied" } else { "rolled_back" }),
            )
            .unwrap();
        }
        p
    }

    fn check(p: &Path) -> Result<u64, Broken> {
        verify(File::open(p).unwrap()).unwrap()
    }

    #[test]
    fn chain_verifies_and_survives_reopening() {
        let d = tempfile::tempdir().unwrap();
        let p = write_log(d.path(), 3);
        // Reopen and continue the chain.
        let mut log = AuditLog::open(&p).unwrap();
        let e = log.append(0, rec("expired")).unwrap();
        assert_eq!(e.seq, 4);
        assert_eq!(check(&p), Ok(4));
        let text = std::fs::read_to_string(&p).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["prev"], GENESIS);
        assert_eq!(first["step"], "applied");
        assert_eq!(first["ts"], "2026-11-21T01:44:10.000Z");
        std::fs::create_dir(d.path().join("e")).unwrap();
        assert_eq!(
            check(&write_log(&d.path().join("e"), 0)),
            Ok(0),
            "an empty log is intact"
        );
    }

    #[test]
    fn an_edited_entry_is_found() {
        let d = tempfile::tempdir().unwrap();
        let p = write_log(d.path(), 5);
        let text = std::fs::read_to_string(&p).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[2] = lines[2].replace("nftables", "iptables");
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        let b = check(&p).unwrap_err();
        assert_eq!(b.line, 4, "{b}");
        assert!(
            b.to_string().contains("line 4") && b.reason.contains("altered"),
            "{b}"
        );
    }

    #[test]
    fn a_removed_entry_is_found() {
        let d = tempfile::tempdir().unwrap();
        let p = write_log(d.path(), 5);
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.contains("\"seq\":2,")).collect();
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        assert_eq!(check(&p).unwrap_err().line, 2);
    }

    #[test]
    fn garbage_and_torn_lines_are_found() {
        let d = tempfile::tempdir().unwrap();
        let p = write_log(d.path(), 2);
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"seq\":3,\"ts\":\"2026").unwrap(); // torn by a crash
        drop(f);
        // The next writer starts a new line and keeps chaining.
        let mut log = AuditLog::open(&p).unwrap();
        log.append(0, rec("applied")).unwrap();
        let b = check(&p).unwrap_err();
        assert_eq!(b.line, 3);
        assert!(b.reason.contains("cut short"), "{b}");
    }
}
