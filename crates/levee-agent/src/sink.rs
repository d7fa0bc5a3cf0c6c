//! Where events go: one JSON line each on stdout and appended to the event log.
//!
//! The log is the durable record, so a failure to write it is an error the
//! agent reports; a closed stdout (the reader went away) only stops the stdout
//! copy, detection and the log carry on.

use levee_model::Event;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("cannot write event log {path}: {source} (choose another with --events-file PATH)")]
pub struct SinkError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

pub struct EventSink {
    log: File,
    path: PathBuf,
    stdout: Option<Box<dyn Write + Send>>,
}

impl EventSink {
    /// Opens (creating parents) the event log for appending.
    pub fn open(path: &Path, stdout: Option<Box<dyn Write + Send>>) -> Result<Self, SinkError> {
        let err = |source| SinkError {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        Ok(EventSink {
            log,
            path: path.to_path_buf(),
            stdout,
        })
    }

    pub fn emit(&mut self, event: &Event) -> Result<(), SinkError> {
        let mut line = event.to_json_line();
        line.push('\n');
        if let Some(out) = self.stdout.as_mut() {
            if out
                .write_all(line.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                tracing::warn!(
                    "stdout is closed; events continue to {}",
                    self.path.display()
                );
                self.stdout = None;
            }
        }
        // One write call per line: O_APPEND makes it land whole even if another
        // process appends to the same file.
        self.log
            .write_all(line.as_bytes())
            .map_err(|source| SinkError {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use levee_model::EventBody;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn ev(n: u64) -> Event {
        Event::new(0, "n", EventBody::BaselineReady { series: n as usize })
    }

    #[test]
    fn writes_stdout_and_appends_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/events.jsonl");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"earlier\":1}\n").unwrap();
        let out = Shared::default();
        let mut sink = EventSink::open(&path, Some(Box::new(out.clone()))).unwrap();
        sink.emit(&ev(1)).unwrap();
        sink.emit(&ev(2)).unwrap();
        let log = std::fs::read_to_string(&path).unwrap();
        assert_eq!(log.lines().count(), 3, "existing lines kept");
        assert_eq!(
            String::from_utf8(out.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .count(),
            2
        );
    }

    #[test]
    fn closed_stdout_does_not_stop_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        let mut sink = EventSink::open(&path, Some(Box::new(Closed))).unwrap();
        sink.emit(&ev(1)).unwrap();
        sink.emit(&ev(2)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[test]
    fn unwritable_log_names_the_path() {
        let err = EventSink::open(Path::new("/proc/levee-cannot/events.jsonl"), None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("/proc/levee-cannot/events.jsonl"));
    }
}
