//! Parsers for `/proc/net/snmp` (IPv4 and the shared TCP MIB) and
//! `/proc/net/snmp6` (IPv6 UDP and ICMP), summed into one [`ProtoCounters`].
//! Pure: text in, counters out.
//!
//! Columns are looked up by name, never by position, because kernels append
//! columns (e.g. `Tcp: ... InCsumErrors`, `Udp: ... MemErrors`).

use crate::error::{excerpt, ParseError};
use levee_model::ProtoCounters;

/// Canonical path of the IPv4 file; errors name it.
pub const PROC_NET_SNMP: &str = "/proc/net/snmp";
/// Canonical path of the IPv6 file (absent when IPv6 is disabled); errors name it.
pub const PROC_NET_SNMP6: &str = "/proc/net/snmp6";

/// Parses `/proc/net/snmp` and, when IPv6 is enabled, `/proc/net/snmp6`.
///
/// TCP comes from `/proc/net/snmp` only: Linux keeps one TCP MIB for both
/// families, so its `Tcp:` line already includes IPv6. UDP and ICMP have separate
/// IPv6 MIBs, which are added.
pub fn parse_snmp(text_v4: &str, text_v6: Option<&str>) -> Result<ProtoCounters, ParseError> {
    let mut p = parse_v4(text_v4)?;
    if let Some(v6) = text_v6 {
        let u = parse_v6(v6)?;
        // Wrapping, not saturating: these are counters, and the rate calculator
        // only ever looks at differences.
        p.udp_in_datagrams = p.udp_in_datagrams.wrapping_add(u.udp_in_datagrams);
        p.udp_no_ports = p.udp_no_ports.wrapping_add(u.udp_no_ports);
        p.udp_in_errors = p.udp_in_errors.wrapping_add(u.udp_in_errors);
        p.udp_rcvbuf_errors = p.udp_rcvbuf_errors.wrapping_add(u.udp_rcvbuf_errors);
        p.icmp_in_msgs = p.icmp_in_msgs.wrapping_add(u.icmp_in_msgs);
    }
    Ok(p)
}

/// The sections of `/proc/net/snmp` we need, and the columns we need from each.
const V4_SECTIONS: [&str; 3] = ["Tcp", "Udp", "Icmp"];
const TCP_COLUMNS: [&str; 4] = ["InSegs", "PassiveOpens", "AttemptFails", "EstabResets"];
const UDP_COLUMNS: [&str; 4] = ["InDatagrams", "NoPorts", "InErrors", "RcvbufErrors"];
const ICMP_COLUMNS: [&str; 1] = ["InMsgs"];

fn parse_v4(text: &str) -> Result<ProtoCounters, ParseError> {
    let mut out = ProtoCounters::default();
    let mut seen = [false; V4_SECTIONS.len()];
    let mut any_line = false;
    // The file is a sequence of pairs: "Proto: Name Name ..." then
    // "Proto: value value ...". `header` holds the first line of a pair.
    let mut header: Option<(usize, &str, &str)> = None;

    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        any_line = true;
        let Some((section, rest)) = line.split_once(':') else {
            return Err(ParseError::Unexpected {
                file: PROC_NET_SNMP,
                line: n,
                expected: "a \"Proto: ...\" line".into(),
                found: excerpt(line),
            });
        };
        let Some((hn, hsection, names)) = header.take() else {
            header = Some((n, section, rest));
            continue;
        };
        if hsection != section {
            return Err(ParseError::Unexpected {
                file: PROC_NET_SNMP,
                line: n,
                expected: format!("the values line of {hsection:?} (header on line {hn})"),
                found: excerpt(line),
            });
        }
        let (idx, fields): (usize, Vec<(&str, &mut u64)>) = match section {
            "Tcp" => (
                0,
                vec![
                    (TCP_COLUMNS[0], &mut out.tcp_in_segs),
                    (TCP_COLUMNS[1], &mut out.tcp_passive_opens),
                    (TCP_COLUMNS[2], &mut out.tcp_attempt_fails),
                    (TCP_COLUMNS[3], &mut out.tcp_estab_resets),
                ],
            ),
            "Udp" => (
                1,
                vec![
                    (UDP_COLUMNS[0], &mut out.udp_in_datagrams),
                    (UDP_COLUMNS[1], &mut out.udp_no_ports),
                    (UDP_COLUMNS[2], &mut out.udp_in_errors),
                    (UDP_COLUMNS[3], &mut out.udp_rcvbuf_errors),
                ],
            ),
            "Icmp" => (2, vec![(ICMP_COLUMNS[0], &mut out.icmp_in_msgs)]),
            // Ip, IcmpMsg, UdpLite and whatever a future kernel adds.
            _ => continue,
        };
        read_pair(section, (hn, names), (n, rest), fields)?;
        seen[idx] = true;
    }

    if let Some((hn, hsection, _)) = header {
        return Err(ParseError::Unexpected {
            file: PROC_NET_SNMP,
            line: hn + 1,
            expected: format!("the values line of {hsection:?}"),
            found: "end of file".into(),
        });
    }
    if !any_line {
        return Err(ParseError::Empty {
            file: PROC_NET_SNMP,
        });
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(ParseError::MissingSection {
            file: PROC_NET_SNMP,
            section: V4_SECTIONS[i],
        });
    }
    Ok(out)
}

/// Fills `fields` from one header/values pair, matching columns by name.
fn read_pair(
    section: &str,
    (hn, names): (usize, &str),
    (vn, values): (usize, &str),
    mut fields: Vec<(&str, &mut u64)>,
) -> Result<(), ParseError> {
    let n_names = names.split_ascii_whitespace().count();
    let n_values = values.split_ascii_whitespace().count();
    if n_names != n_values {
        return Err(ParseError::Unexpected {
            file: PROC_NET_SNMP,
            line: vn,
            expected: format!("{n_names} values, one per column named on line {hn}"),
            found: format!("{n_values} values"),
        });
    }
    let mut found = vec![false; fields.len()];
    for (name, value) in names
        .split_ascii_whitespace()
        .zip(values.split_ascii_whitespace())
    {
        // Columns we do not use are not parsed at all: some are legitimately
        // negative (Tcp MaxConn is -1) and none of them can fail the sample.
        let Some(k) = fields.iter().position(|(want, _)| *want == name) else {
            continue;
        };
        *fields[k].1 = value.parse().map_err(|_| ParseError::NotANumber {
            file: PROC_NET_SNMP,
            line: vn,
            column: format!("{section} {name}"),
            found: excerpt(value),
        })?;
        found[k] = true;
    }
    if let Some(k) = found.iter().position(|f| !f) {
        return Err(ParseError::MissingColumn {
            file: PROC_NET_SNMP,
            line: hn,
            column: format!("{section} {}", fields[k].0),
        });
    }
    Ok(())
}

const V6_COUNTERS: [&str; 5] = [
    "Udp6InDatagrams",
    "Udp6NoPorts",
    "Udp6InErrors",
    "Udp6RcvbufErrors",
    "Icmp6InMsgs",
];

/// `/proc/net/snmp6` is one `Name<spaces/tab>value` pair per line.
fn parse_v6(text: &str) -> Result<ProtoCounters, ParseError> {
    let mut values = [0u64; V6_COUNTERS.len()];
    let mut found = [false; V6_COUNTERS.len()];
    let mut any_line = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let mut words = line.split_ascii_whitespace();
        let Some(name) = words.next() else {
            continue;
        };
        any_line = true;
        // Lines we do not need are not validated: a new kernel may print anything.
        let Some(k) = V6_COUNTERS.iter().position(|c| *c == name) else {
            continue;
        };
        let (Some(value), None) = (words.next(), words.next()) else {
            return Err(ParseError::Unexpected {
                file: PROC_NET_SNMP6,
                line: n,
                expected: format!("\"{name} <value>\""),
                found: excerpt(line),
            });
        };
        values[k] = value.parse().map_err(|_| ParseError::NotANumber {
            file: PROC_NET_SNMP6,
            line: n,
            column: name.to_string(),
            found: excerpt(value),
        })?;
        found[k] = true;
    }
    if !any_line {
        return Err(ParseError::Empty {
            file: PROC_NET_SNMP6,
        });
    }
    if let Some(k) = found.iter().position(|f| !f) {
        return Err(ParseError::MissingCounter {
            file: PROC_NET_SNMP6,
            name: V6_COUNTERS[k],
        });
    }
    Ok(ProtoCounters {
        udp_in_datagrams: values[0],
        udp_no_ports: values[1],
        udp_in_errors: values[2],
        udp_rcvbuf_errors: values[3],
        icmp_in_msgs: values[4],
        ..ProtoCounters::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = include_str!("../tests/fixtures/proc_net_snmp.txt");
    const SNMP6: &str = include_str!("../tests/fixtures/proc_net_snmp6.txt");

    #[test]
    fn parses_this_machines_files() {
        let p = parse_snmp(SNMP, Some(SNMP6)).expect("fixtures parse");
        assert_eq!(
            p,
            ProtoCounters {
                tcp_in_segs: 2072,
                tcp_passive_opens: 2,
                tcp_attempt_fails: 0,
                tcp_estab_resets: 13,
                // v4 47 + v6 0
                udp_in_datagrams: 47,
                udp_no_ports: 0,
                udp_in_errors: 0,
                udp_rcvbuf_errors: 0,
                // v4 1 + v6 1
                icmp_in_msgs: 2,
            }
        );
    }

    #[test]
    fn ipv6_disabled_means_v4_only() {
        let p = parse_snmp(SNMP, None).unwrap();
        assert_eq!(p.icmp_in_msgs, 1);
        assert_eq!(p.udp_in_datagrams, 47);
    }

    #[test]
    fn sums_v6_udp_and_icmp_but_not_tcp() {
        let v4 = "Tcp: InSegs PassiveOpens AttemptFails EstabResets\nTcp: 10 1 2 3\n\
Udp: InDatagrams NoPorts InErrors RcvbufErrors\nUdp: 100 20 3 1\n\
Icmp: InMsgs\nIcmp: 7\n";
        let v6 = "Udp6InDatagrams 5\nUdp6NoPorts 4\nUdp6InErrors 3\nUdp6RcvbufErrors 2\n\
Icmp6InMsgs 1\nUdpLite6InDatagrams 999\nTcp6Whatever 999\n";
        let p = parse_snmp(v4, Some(v6)).unwrap();
        assert_eq!(p.tcp_in_segs, 10);
        assert_eq!(p.udp_in_datagrams, 105);
        assert_eq!(p.udp_no_ports, 24);
        assert_eq!(p.udp_in_errors, 6);
        assert_eq!(p.udp_rcvbuf_errors, 3);
        assert_eq!(p.icmp_in_msgs, 8);
    }

    /// An older layout (no InCsumErrors/IgnoredMulti/MemErrors) and a reordered,
    /// extended one must both work: columns are matched by name.
    #[test]
    fn tolerates_missing_optional_and_extra_unknown_columns() {
        let old = "Icmp: InMsgs InErrors\nIcmp: 5 0\n\
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts\n\
Tcp: 1 200 120000 -1 25 2 0 13 0 2072 1466 0 0 15\n\
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n\
Udp: 47 1 2 48 3 0\n";
        let p = parse_snmp(old, None).unwrap();
        assert_eq!(
            (p.tcp_in_segs, p.udp_rcvbuf_errors, p.icmp_in_msgs),
            (2072, 3, 5)
        );

        let future = "Tcp: FutureCol EstabResets InSegs AttemptFails PassiveOpens Another\n\
Tcp: -5 4 3 2 1 -9\nUdp: RcvbufErrors InErrors NoPorts InDatagrams Zzz\nUdp: 1 2 3 4 x\n\
Icmp: Foo InMsgs\nIcmp: bar 9\nNewProto: A B\nNewProto: 1 2\n";
        let p = parse_snmp(future, None).unwrap();
        assert_eq!(
            (p.tcp_in_segs, p.tcp_passive_opens, p.tcp_estab_resets),
            (3, 1, 4)
        );
        assert_eq!((p.udp_in_datagrams, p.udp_rcvbuf_errors), (4, 1));
        assert_eq!(p.icmp_in_msgs, 9);
    }

    #[test]
    fn missing_required_column_is_named() {
        let v4 = SNMP.replace("PassiveOpens", "PassiveOpenz");
        let e = parse_snmp(&v4, None).unwrap_err();
        assert_eq!(
            e,
            ParseError::MissingColumn {
                file: PROC_NET_SNMP,
                line: 7,
                column: "Tcp PassiveOpens".into()
            }
        );
        assert!(e.to_string().contains("/proc/net/snmp line 7"), "{e}");
    }

    #[test]
    fn missing_section_is_named() {
        let v4: String = SNMP
            .lines()
            .filter(|l| !l.starts_with("Udp:"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            parse_snmp(&v4, None),
            Err(ParseError::MissingSection {
                file: PROC_NET_SNMP,
                section: "Udp"
            })
        );
    }

    #[test]
    fn truncated_file_is_an_error() {
        // Cut in the middle of the Tcp values line.
        let cut = SNMP.find("Tcp: 1 200").unwrap() + 10;
        let e = parse_snmp(&SNMP[..cut], None).unwrap_err();
        assert!(matches!(e, ParseError::Unexpected { line: 8, .. }), "{e}");
        // Cut right after a header line.
        let cut = SNMP.find("Tcp: 1 200").unwrap();
        let e = parse_snmp(&SNMP[..cut], None).unwrap_err();
        assert!(
            e.to_string().contains("end of file") && e.line() == Some(8),
            "{e}"
        );
    }

    #[test]
    fn non_numeric_value_names_column_and_line() {
        let v4 = SNMP.replace("Udp: 47 0", "Udp: 4x7 0");
        let e = parse_snmp(&v4, None).unwrap_err();
        assert_eq!(
            e,
            ParseError::NotANumber {
                file: PROC_NET_SNMP,
                line: 10,
                column: "Udp InDatagrams".into(),
                found: "4x7".into()
            }
        );
    }

    #[test]
    fn mismatched_pair_is_an_error() {
        let v4 = "Tcp: InSegs\nUdp: 1\n";
        assert!(matches!(
            parse_snmp(v4, None),
            Err(ParseError::Unexpected { line: 2, .. })
        ));
    }

    #[test]
    fn empty_files_are_errors() {
        assert!(matches!(
            parse_snmp("", None),
            Err(ParseError::Empty { .. })
        ));
        assert_eq!(
            parse_snmp(SNMP, Some("\n")),
            Err(ParseError::Empty {
                file: PROC_NET_SNMP6
            })
        );
    }

    #[test]
    fn snmp6_errors_name_the_counter() {
        let v6 = SNMP6.replace("Icmp6InMsgs", "Icmp6InMsgz");
        assert_eq!(
            parse_snmp(SNMP, Some(&v6)),
            Err(ParseError::MissingCounter {
                file: PROC_NET_SNMP6,
                name: "Icmp6InMsgs"
            })
        );
        let v6 = SNMP6.replace("Udp6NoPorts                     \t0", "Udp6NoPorts -3");
        let e = parse_snmp(SNMP, Some(&v6)).unwrap_err();
        assert!(
            matches!(&e, ParseError::NotANumber { file: PROC_NET_SNMP6, column, .. } if column == "Udp6NoPorts"),
            "{e}"
        );
        let v6 = SNMP6.replace("Udp6InErrors                    \t0", "Udp6InErrors");
        assert!(matches!(
            parse_snmp(SNMP, Some(&v6)),
            Err(ParseError::Unexpected {
                file: PROC_NET_SNMP6,
                ..
            })
        ));
    }
}
