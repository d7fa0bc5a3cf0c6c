//! The machine line every benchmark table carries (CPU count and model,
//! kernel, date), written once so all benchmarks describe machines alike.

use levee_model::timefmt::rfc3339_millis;

fn first_line_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// `machine: 2 CPUs (AMD EPYC ...), kernel 6.18.44; date 2026-11-21T02:07:44.465Z`
pub fn describe() -> String {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| first_line_value(&c, "model name"))
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!(
        "machine: {nproc} CPUs ({model}), kernel {kernel}; date {}",
        rfc3339_millis(crate::clock::wall_ms())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cpus_model_kernel_and_date() {
        let m = describe();
        assert!(
            m.starts_with("machine: ")
                && m.contains("CPUs (")
                && m.contains("kernel ")
                && m.contains("date "),
            "{m}"
        );
        assert_eq!(
            first_line_value("a: 1\nmodel name\t: EPYC\n", "model name").as_deref(),
            Some("EPYC")
        );
    }
}
