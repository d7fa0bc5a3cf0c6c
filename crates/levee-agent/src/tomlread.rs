//! Reading a TOML table key by key while collecting every problem, so a config
//! file with five mistakes is reported in one run, not five.
//!
//! Each `get_*` call consumes a key; [`TableReader::finish`] reports the keys no
//! one asked for as unknown. The code that reads a key is thus the one place
//! that defines it.

use std::time::Duration;
use toml::{Table, Value};

/// One problem in a config file: the dotted key and what is expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

pub struct TableReader<'a> {
    prefix: String,
    table: Table,
    problems: &'a mut Vec<ConfigProblem>,
}

impl<'a> TableReader<'a> {
    pub fn new(prefix: &str, table: Table, problems: &'a mut Vec<ConfigProblem>) -> Self {
        TableReader {
            prefix: prefix.to_string(),
            table,
            problems,
        }
    }

    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.prefix, key)
        }
    }

    pub fn problem(&mut self, key: &str, message: impl Into<String>) {
        let key = self.path(key);
        self.problems.push(ConfigProblem {
            key,
            message: message.into(),
        });
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.table.remove(key)
    }

    /// A sub-table, read with its own reader; `None` when absent or not a table.
    pub fn table(&mut self, key: &str) -> Option<Table> {
        match self.take(key)? {
            Value::Table(t) => Some(t),
            other => {
                self.problem(
                    key,
                    format!(
                        "expected a table ([{}]), found {}",
                        self.path(key),
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    pub fn sub(&mut self, key: &str) -> Option<TableReader<'_>> {
        let t = self.table(key)?;
        let prefix = self.path(key);
        Some(TableReader {
            prefix,
            table: t,
            problems: self.problems,
        })
    }

    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.take(key)? {
            Value::Boolean(b) => Some(b),
            other => {
                self.problem(
                    key,
                    format!("expected true or false, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// An array of tables (`[[key]]`): each table with the dotted name its
    /// keys are reported under (`key[i]`); read each with [`Self::reader`].
    pub fn table_list(&mut self, key: &str) -> Option<Vec<(String, Table)>> {
        let items = match self.take(key)? {
            Value::Array(items) => items,
            other => {
                self.problem(
                    key,
                    format!(
                        "expected a list of tables ([[{}]]), found {}",
                        self.path(key),
                        other.type_str()
                    ),
                );
                return None;
            }
        };
        let base = self.path(key);
        let mut tables = Vec::new();
        for (i, v) in items.into_iter().enumerate() {
            match v {
                Value::Table(t) => tables.push((format!("{base}[{i}]"), t)),
                other => self.problem(
                    &format!("{key}[{i}]"),
                    format!("expected a table, found {}", other.type_str()),
                ),
            }
        }
        Some(tables)
    }

    /// A reader for a table taken out of this one (e.g. by [`Self::table_list`]),
    /// reporting into the same problem list.
    pub fn reader(&mut self, prefix: String, table: Table) -> TableReader<'_> {
        TableReader {
            prefix,
            table,
            problems: self.problems,
        }
    }

    pub fn string(&mut self, key: &str) -> Option<String> {
        match self.take(key)? {
            Value::String(s) => Some(s),
            other => {
                self.problem(
                    key,
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    pub fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        match self.take(key)? {
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, v) in items.into_iter().enumerate() {
                    match v {
                        Value::String(s) => out.push(s),
                        other => self.problem(
                            &format!("{key}[{i}]"),
                            format!("expected a string, found {}", other.type_str()),
                        ),
                    }
                }
                Some(out)
            }
            other => {
                self.problem(
                    key,
                    format!(
                        "expected a list of strings like [\"eth0\"], found {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    /// A number (integer or float) within `min..=max`.
    pub fn number(&mut self, key: &str, min: f64, max: f64) -> Option<f64> {
        let v = match self.take(key)? {
            Value::Integer(i) => i as f64,
            Value::Float(f) => f,
            other => {
                self.problem(
                    key,
                    format!("expected a number, found {}", other.type_str()),
                );
                return None;
            }
        };
        if !(v.is_finite() && v >= min && v <= max) {
            self.problem(
                key,
                format!("expected a number from {min} to {max}, found {v}"),
            );
            return None;
        }
        Some(v)
    }

    /// A whole number within `min..=max`.
    pub fn integer(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        match self.take(key)? {
            Value::Integer(i) if (min..=max).contains(&i) => Some(i),
            Value::Integer(i) => {
                self.problem(
                    key,
                    format!("expected a whole number from {min} to {max}, found {i}"),
                );
                None
            }
            other => {
                self.problem(
                    key,
                    format!("expected a whole number, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A duration written as a string ("100ms", "20s", "5m") within `min..=max`.
    pub fn duration(&mut self, key: &str, min: Duration, max: Duration) -> Option<Duration> {
        let raw = match self.take(key)? {
            Value::String(s) => s,
            other => {
                self.problem(
                    key,
                    format!(
                        "expected a duration string like \"10s\" or \"100ms\", found {}",
                        other.type_str()
                    ),
                );
                return None;
            }
        };
        match parse_duration_in(&raw, min, max) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(key, e);
                None
            }
        }
    }

    /// Reports every key left unread as unknown.
    pub fn finish(self) {
        for key in self.table.keys() {
            let path = if self.prefix.is_empty() {
                key.clone()
            } else {
                format!("{}.{}", self.prefix, key)
            };
            self.problems.push(ConfigProblem {
                key: path,
                message: "unknown key (see examples/agent.toml for every valid key)".to_string(),
            });
        }
    }
}

/// Parses "100ms", "1s", "5m", "1h30m" and checks the range; the error says
/// what was expected.
pub fn parse_duration_in(raw: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(raw.trim()).map_err(|e| {
        format!("expected a duration like \"100ms\", \"20s\" or \"5m\", found \"{raw}\" ({e})")
    })?;
    if d < min || d > max {
        return Err(format!(
            "expected a duration from {} to {}, found \"{raw}\"",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}
