//! The VRP JSON file rpki-client (`-j`) writes and stayrtr serves:
//! `{"roas": [{"prefix": "192.0.2.0/24", "maxLength": 24, "asn": "AS64500"}]}`
//! (`asn` as `"AS64500"` or `64500`; other fields ignored).

use super::{Roa, RoaSet};
use ipnet::IpNet;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum RoaFileError {
    #[error("ROA file {path}: {source} (check [bgp.rpki] roa_file)")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("ROA file {path}: {msg} (expected rpki-client/stayrtr JSON: {{\"roas\": [{{\"prefix\": \"192.0.2.0/24\", \"maxLength\": 24, \"asn\": \"AS64500\"}}]}})")]
    Format { path: String, msg: String },
}

#[derive(Deserialize)]
struct File {
    roas: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    prefix: String,
    max_length: u8,
    asn: Asn,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Asn {
    Num(u32),
    Text(String),
}

/// Parses the JSON text; `path` only names the source in errors.
pub fn parse(text: &str, path: &str) -> Result<RoaSet, RoaFileError> {
    let fmt_err = |msg: String| RoaFileError::Format {
        path: path.to_string(),
        msg,
    };
    let f: File = serde_json::from_str(text).map_err(|e| fmt_err(e.to_string()))?;
    let mut roas = Vec::with_capacity(f.roas.len());
    for (i, e) in f.roas.into_iter().enumerate() {
        let prefix: IpNet = e
            .prefix
            .parse()
            .map_err(|_| fmt_err(format!("roas[{i}].prefix `{}` is not a prefix", e.prefix)))?;
        let asn = match e.asn {
            Asn::Num(n) => n,
            Asn::Text(t) => t
                .trim_start_matches("AS")
                .trim_start_matches("as")
                .parse()
                .map_err(|_| fmt_err(format!("roas[{i}].asn `{t}` is not an AS number")))?,
        };
        if e.max_length < prefix.prefix_len() || e.max_length > prefix.max_prefix_len() {
            return Err(fmt_err(format!(
                "roas[{i}].maxLength {} is outside {}..={} for {prefix}",
                e.max_length,
                prefix.prefix_len(),
                prefix.max_prefix_len()
            )));
        }
        roas.push(Roa {
            prefix,
            max_len: e.max_length,
            asn,
        });
    }
    Ok(RoaSet::new(roas))
}

/// Reads and parses a ROA file.
pub fn load(path: &Path) -> Result<RoaSet, RoaFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| RoaFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_asn_forms_and_errors() {
        let set = parse(
            r#"{"metadata":{"buildtime":"x"},"roas":[
                {"prefix":"203.0.113.0/24","maxLength":24,"asn":"AS64500","ta":"lab"},
                {"prefix":"2001:db8::/32","maxLength":48,"asn":64500}]}"#,
            "t.json",
        )
        .unwrap();
        assert_eq!(set.len(), 2);
        let e = parse(
            r#"{"roas":[{"prefix":"203.0.113.0/24","maxLength":16,"asn":1}]}"#,
            "t.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("roas[0].maxLength 16") && e.contains("t.json"),
            "{e}"
        );
        let e = parse(
            r#"{"roas":[{"prefix":"x","maxLength":16,"asn":1}]}"#,
            "t.json",
        )
        .unwrap_err();
        assert!(e.to_string().contains("roas[0].prefix"));
        assert!(parse("[]", "t.json")
            .unwrap_err()
            .to_string()
            .contains("expected rpki-client"));
    }
}
