//! Benchmark output shared by every lab benchmark: the markdown results
//! table (what | how measured | result | target | peer), generic markdown
//! tables and number formatting. The machine line is [`crate::machine`].

/// One row of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    pub what: String,
    pub how: String,
    pub result: String,
    pub target: String,
    pub peer: String,
}

impl Row {
    pub fn new(what: &str, how: &str, result: String, target: &str, peer: String) -> Row {
        Row {
            what: what.into(),
            how: how.into(),
            result,
            target: target.into(),
            peer,
        }
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders rows as a markdown table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n", header.join(" | "));
    s.push_str(&format!("|{}\n", " --- |".repeat(header.len())));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
        s.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    s
}

/// The main results table.
pub fn results_table(rows: &[Row]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.what.clone(),
                r.how.clone(),
                r.result.clone(),
                r.target.clone(),
                r.peer.clone(),
            ]
        })
        .collect();
    table(
        &[
            "what",
            "how measured",
            "result",
            "target",
            "peer (same run)",
        ],
        &rows,
    )
}

/// `12.3` style formatting with a unit, or `n/a`.
pub fn num(v: Option<f64>, decimals: usize, unit: &str) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}{unit}"),
        _ => "n/a".into(),
    }
}

/// Latencies in milliseconds as `p50 X ms / p95 Y ms / max Z ms (n=N)`,
/// or `n/a` when there are none.
pub fn ms_summary(values: &[f64]) -> String {
    match crate::stats::summarize(values) {
        Some(s) => format!(
            "p50 {} / p95 {} / max {} (n={})",
            num(Some(s.p50), 1, " ms"),
            num(Some(s.p95), 1, " ms"),
            num(Some(s.max), 1, " ms"),
            s.n
        ),
        None => "n/a".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_summary_reads_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(
            ms_summary(&v),
            "p50 50.0 ms / p95 95.0 ms / max 100.0 ms (n=100)"
        );
        assert_eq!(ms_summary(&[]), "n/a");
    }

    #[test]
    fn renders_markdown() {
        let t = results_table(&[Row::new("a|b", "x", "1".into(), "2", "-".into())]);
        assert_eq!(
            t,
            "| what | how measured | result | target | peer (same run) |\n| --- | --- | --- | --- | --- |\n| a\\|b | x | 1 | 2 | - |\n"
        );
        assert_eq!(num(Some(1.234), 1, " ms"), "1.2 ms");
        assert_eq!(num(None, 1, ""), "n/a");
    }
}
