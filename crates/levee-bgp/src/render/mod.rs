//! Rules as text for each speaker or router: ExaBGP's API commands, a
//! complete `gobgp` command line, a BIRD 2 static-protocol route, Junos
//! `set` commands and an IOS-XR class-map/policy-map. What the adapters
//! run is exactly this text (or its argv), so a preview is the truth.

pub mod bird;
pub mod cisco;
pub mod exabgp;
pub mod gobgp;
pub mod junos;

use crate::flowspec::BitOp;
use crate::rule::Rule;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Output syntaxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Exabgp,
    Gobgp,
    Bird,
    Junos,
    Cisco,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Exabgp,
        Format::Gobgp,
        Format::Bird,
        Format::Junos,
        Format::Cisco,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Format::Exabgp => "exabgp",
            Format::Gobgp => "gobgp",
            Format::Bird => "bird",
            Format::Junos => "junos",
            Format::Cisco => "cisco",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!("format `{s}`: expected one of exabgp, gobgp, bird, junos, cisco")
            })
    }
}

/// Announce or withdraw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Announce,
    Withdraw,
}

/// Why a rule cannot be said in a syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{format} cannot express {what}")]
pub struct RenderError {
    pub format: Format,
    pub what: String,
}

/// The rule in `format`; `name` names it where the syntax wants a name
/// (Junos routes, IOS-XR class maps).
pub fn render(rule: &Rule, format: Format, op: Op, name: &str) -> Result<String, RenderError> {
    match format {
        Format::Exabgp => exabgp::command(rule, op),
        Format::Gobgp => gobgp::command(rule, op),
        Format::Bird => match op {
            Op::Announce => bird::route(rule),
            Op::Withdraw => Ok(String::new()),
        },
        Format::Junos => junos::commands(rule, op, name),
        Format::Cisco => cisco::config(rule, op, name),
    }
}

/// Splits operators into AND groups (the OR of which matches).
pub(crate) fn groups<T: Copy>(ops: &[T], and: impl Fn(&T) -> bool) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if i == 0 || !and(op) {
            out.push(Vec::new());
        }
        out.last_mut().expect("pushed").push(*op);
    }
    out
}

pub(crate) fn bit_groups(ops: &[BitOp]) -> Vec<Vec<BitOp>> {
    groups(ops, |o| o.and)
}

/// TCP flag bits with the letters GoBGP and tcpdump use.
pub(crate) const TCP_LETTERS: [(u16, char, &str); 8] = [
    (0x01, 'F', "fin"),
    (0x02, 'S', "syn"),
    (0x04, 'R', "rst"),
    (0x08, 'P', "push"),
    (0x10, 'A', "ack"),
    (0x20, 'U', "urg"),
    (0x40, 'E', "ece"),
    (0x80, 'C', "cwr"),
];

/// Fragment bits with their common names.
pub(crate) const FRAG_NAMES: [(u16, &str); 4] = [
    (0x01, "dont-fragment"),
    (0x02, "is-fragment"),
    (0x04, "first-fragment"),
    (0x08, "last-fragment"),
];

pub(crate) fn bit_names(value: u16, table: &[(u16, &'static str)]) -> Option<Vec<&'static str>> {
    let mut left = value;
    let mut out = Vec::new();
    for &(b, n) in table {
        if value & b != 0 {
            out.push(n);
            left &= !b;
        }
    }
    (left == 0).then_some(out)
}

pub(crate) fn tcp_names(value: u16) -> Option<Vec<&'static str>> {
    let t: Vec<(u16, &str)> = TCP_LETTERS.iter().map(|&(b, _, n)| (b, n)).collect();
    bit_names(value, &t)
}

/// IP protocol names most syntaxes know.
pub(crate) fn protocol_name(p: u64) -> Option<&'static str> {
    Some(match p {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        47 => "gre",
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod tests;
