//! Parser tests against small fixtures modelled on the public list formats.

use levee_ioc::{parse_str, Format, LineErrorKind};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn spamhaus_drop_keeps_sbl_reference_and_detects_format() {
    let (items, report) = parse_str(&fixture("drop.txt"), "drop.txt", Format::Auto);
    assert_eq!(report.format, Format::SpamhausDrop);
    assert_eq!(report.indicators, 6);
    assert_eq!(report.bad_lines, 0);
    assert_eq!(items[0].prefix.to_string(), "1.10.16.0/20");
    assert_eq!(items[0].note.as_deref(), Some("SBL256894"));
    // 45.8.24.5/22 has host bits set: masked and counted, not rejected.
    assert_eq!(report.normalised, 1);
    assert_eq!(items[5].prefix.to_string(), "45.8.24.0/22");
    assert_eq!(items[5].note.as_deref(), Some("SBL470123"));
}

#[test]
fn spamhaus_dropv6() {
    let (items, report) = parse_str(&fixture("dropv6.txt"), "dropv6.txt", Format::Auto);
    assert_eq!(report.format, Format::SpamhausDrop);
    assert_eq!(items.len(), 3);
    assert_eq!(items[2].prefix.to_string(), "2a0e:b107:1570::/44");
    assert_eq!(items[2].note.as_deref(), Some("SBL588122"));
}

#[test]
fn firehol_netset() {
    let (items, report) = parse_str(
        &fixture("firehol_level1.netset"),
        "firehol_level1.netset",
        Format::Auto,
    );
    assert_eq!(report.format, Format::FireholNetset);
    assert_eq!(report.indicators, 6);
    assert_eq!(report.bad_lines, 0);
    assert!(items.iter().all(|i| i.note.is_none()));
    assert_eq!(items[0].prefix.to_string(), "0.0.0.0/8");
}

#[test]
fn plain_list_counts_bad_lines_without_losing_good_ones() {
    let (items, report) = parse_str(&fixture("plain.txt"), "plain.txt", Format::Auto);
    assert_eq!(report.format, Format::Plain);
    let got: Vec<String> = items.iter().map(|i| i.prefix.to_string()).collect();
    assert_eq!(
        got,
        [
            "198.51.100.7/32",
            "198.51.100.0/24",
            "203.0.113.9/32",
            "2001:db8:bad::1/128",
            "2001:db8:bad::/48",
            "10.0.0.0/8",
            "192.0.2.44/32",
        ]
    );
    // In a plain list `;` is a comment, not a note.
    assert!(items.iter().all(|i| i.note.is_none()));
    assert_eq!(report.normalised, 1);
    assert_eq!(report.bad_lines, 3);
    let lines: Vec<usize> = report.first_errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [10, 11, 12]);
    assert!(matches!(
        report.first_errors[1].kind,
        LineErrorKind::TrailingText(_)
    ));
    let msg = report.first_errors[0].to_string();
    assert!(msg.starts_with("plain.txt:10: "), "{msg}");
    assert!(msg.contains("not-an-ip"), "{msg}");
}

#[test]
fn explicit_format_overrides_detection() {
    // Read as plain, the Spamhaus reference is a comment and is dropped.
    let (items, report) = parse_str(&fixture("drop.txt"), "drop.txt", Format::Plain);
    assert_eq!(report.format, Format::Plain);
    assert_eq!(items.len(), 6);
    assert!(items.iter().all(|i| i.note.is_none()));
}

#[test]
fn only_the_first_few_errors_are_kept() {
    let text = "garbage\n".repeat(100) + "192.0.2.1\n";
    let (items, report) = parse_str(&text, "junk", Format::Plain);
    assert_eq!(items.len(), 1);
    assert_eq!(report.bad_lines, 100);
    assert_eq!(
        report.first_errors.len(),
        levee_ioc::parse::MAX_REPORTED_ERRORS
    );
}

#[test]
fn reader_reports_invalid_utf8_per_line() {
    let bytes: &[u8] = b"192.0.2.1\r\n\xff\xfe\n\xef\xbb\xbf192.0.2.2\n2001:db8::/32";
    let mut got = Vec::new();
    let report = levee_ioc::parse_reader(bytes, "bytes", Format::Auto, |i| {
        got.push(i.prefix.to_string())
    })
    .expect("in-memory read");
    assert_eq!(got, ["192.0.2.1/32", "192.0.2.2/32", "2001:db8::/32"]);
    assert_eq!(report.bad_lines, 1);
    assert_eq!(report.first_errors[0].kind, LineErrorKind::NotUtf8);
    assert_eq!(report.first_errors[0].line, 2);
}
