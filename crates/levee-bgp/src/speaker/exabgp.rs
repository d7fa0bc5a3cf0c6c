//! ExaBGP 4.2 through its process API. ExaBGP runs a `process` whose
//! stdout it reads commands from; Levee's process is a two-line shell
//! script ([`process_script`]) that copies a named pipe to stdout and
//! ExaBGP's acknowledgements (`done` / `error`) to a file. The adapter
//! writes each command to the pipe and waits for its acknowledgement, so a
//! command ExaBGP rejects is an error here, not a silent no-op.

use super::{Speaker, SpeakerError};
use crate::render::{exabgp, Op};
use crate::rule::Rule;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The process script for ExaBGP's config (`process levee { run SCRIPT; encoder text; }`).
pub fn process_script(pipe: &Path, acks: &Path) -> String {
    format!(
        "#!/bin/sh\n# Written by Levee: feeds ExaBGP's API from {pipe} and keeps its acknowledgements in {acks}.\n\
         # (A background job's stdin is /dev/null unless redirected: hand it ExaBGP's via fd 3.)\n\
         exec 3<&0\ncat <&3 >> '{acks}' &\nexec cat 0<> '{pipe}' 3<&-\n",
        pipe = pipe.display(),
        acks = acks.display()
    )
}

/// Creates the named pipe (mode 0600) if it does not exist.
pub fn make_pipe(path: &Path) -> Result<(), SpeakerError> {
    if path.exists() {
        return Ok(());
    }
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
        SpeakerError::Io {
            what: format!("ExaBGP pipe {}", path.display()),
            source: std::io::Error::other("path contains a NUL byte"),
        }
    })?;
    // SAFETY: `c` is a valid NUL-terminated path; mkfifo has no other preconditions.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(SpeakerError::Io {
            what: format!("creating ExaBGP pipe {}", path.display()),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

pub struct ExaBgp {
    pipe_path: PathBuf,
    pipe: File,
    acks: Option<(PathBuf, u64)>,
    timeout: Duration,
}

impl ExaBgp {
    /// Opens `pipe` (read-write, so opening never blocks and ExaBGP's side
    /// never sees end-of-file while Levee runs). With `acks`, every command
    /// waits up to `timeout` for ExaBGP's answer in that file.
    pub fn open(
        pipe: &Path,
        acks: Option<&Path>,
        timeout: Duration,
    ) -> Result<ExaBgp, SpeakerError> {
        make_pipe(pipe)?;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(pipe)
            .map_err(|source| SpeakerError::Io {
                what: format!("opening ExaBGP pipe {}", pipe.display()),
                source,
            })?;
        let acks = acks.map(|a| {
            let len = std::fs::metadata(a).map(|m| m.len()).unwrap_or(0);
            (a.to_path_buf(), len)
        });
        Ok(ExaBgp {
            pipe_path: pipe.to_path_buf(),
            pipe: f,
            acks,
            timeout,
        })
    }

    fn send(&mut self, line: &str) -> Result<(), SpeakerError> {
        let io = |source| SpeakerError::Io {
            what: format!("writing to ExaBGP pipe {}", self.pipe_path.display()),
            source,
        };
        self.pipe
            .write_all(format!("{line}\n").as_bytes())
            .map_err(io)?;
        let Some((path, offset)) = self.acks.as_mut() else {
            return Ok(());
        };
        let deadline = Instant::now() + self.timeout;
        loop {
            let mut text = String::new();
            if let Ok(mut f) = File::open(&*path) {
                let _ = f.seek(SeekFrom::Start(*offset));
                let _ = f.read_to_string(&mut text);
            }
            if let Some(end) = text.find('\n') {
                let ack = text[..end].trim().to_string();
                *offset += end as u64 + 1;
                return match ack.as_str() {
                    "done" => Ok(()),
                    _ => Err(SpeakerError::Rejected {
                        speaker: "exabgp".into(),
                        output: format!("`{ack}` for `{line}` (see ExaBGP's log)"),
                    }),
                };
            }
            if Instant::now() >= deadline {
                return Err(SpeakerError::Rejected {
                    speaker: "exabgp".into(),
                    output: format!(
                        "no acknowledgement within {:?} in {} (is ExaBGP running its levee process?)",
                        self.timeout,
                        path.display()
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Speaker for ExaBgp {
    fn name(&self) -> &str {
        "exabgp"
    }
    fn render(&self, rule: &Rule, op: Op) -> Result<String, SpeakerError> {
        Ok(exabgp::command(rule, op)?)
    }
    fn announce(&mut self, rule: &Rule) -> Result<(), SpeakerError> {
        let c = exabgp::command(rule, Op::Announce)?;
        self.send(&c)
    }
    fn withdraw(&mut self, rule: &Rule) -> Result<(), SpeakerError> {
        let c = exabgp::command(rule, Op::Withdraw)?;
        self.send(&c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_commands_and_reads_acks() {
        let d = tempfile::tempdir().unwrap();
        let pipe = d.path().join("cmd");
        let acks = d.path().join("acks");
        std::fs::write(&acks, "done\n").unwrap();
        let mut x = ExaBgp::open(&pipe, Some(&acks), Duration::from_millis(300)).unwrap();
        let mut reader = OpenOptions::new().read(true).open(&pipe).unwrap();
        // An answer that arrives after the command.
        let a2 = acks.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let mut f = OpenOptions::new().append(true).open(a2).unwrap();
            f.write_all(b"done\nerror\n").unwrap();
        });
        x.announce(&crate::render::tests::rtbh()).unwrap();
        t.join().unwrap();
        let e = x
            .withdraw(&crate::render::tests::rtbh())
            .unwrap_err()
            .to_string();
        assert!(e.contains("`error`"), "{e}");
        let mut buf = [0u8; 200];
        let n = reader.read(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            text.starts_with("announce route 203.0.113.7/32 next-hop 192.0.2.1"),
            "{text}"
        );
        let e = x
            .announce(&crate::render::tests::rtbh())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no acknowledgement"), "{e}");
        assert!(process_script(&pipe, &acks).contains("exec cat 0<>"));
    }
}
