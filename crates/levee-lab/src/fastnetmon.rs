//! FastNetMon, the peer benchmarks measure against: its files (config from
//! the Debian defaults with keys replaced, networks list, a notify script
//! that timestamps bans), its version and the time of its first ban. The
//! benchmarks that run it (mirror mode in `levee-lab-bench`, flow mode in
//! the `flow_collectors` bench) share these.

use std::path::{Path, PathBuf};

/// `base` with `key = value` lines replaced (or appended when absent).
pub fn apply_overrides(base: &str, over: &[(&str, String)]) -> String {
    let mut seen = vec![false; over.len()];
    let mut out = String::new();
    for line in base.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        match over.iter().position(|(k, _)| *k == key) {
            Some(i) if !line.trim_start().starts_with('#') => {
                seen[i] = true;
                out.push_str(&format!("{key} = {}\n", over[i].1));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (i, (k, v)) in over.iter().enumerate() {
        if !seen[i] {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    out
}

/// The files of one FastNetMon instance in `dir`.
#[derive(Debug, Clone)]
pub struct Files {
    pub conf: PathBuf,
    /// Where the notify script appends `<ms> <ip> <direction> <pps> <action>`.
    pub notify_log: PathBuf,
}

/// The config keys pointing into `dir` (networks, notify script, pid and
/// stats files), to be added to a benchmark's own overrides.
pub fn file_overrides(dir: &Path) -> Vec<(&'static str, String)> {
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    vec![
        ("networks_list_path", p("networks_list")),
        ("white_list_path", p("networks_whitelist")),
        ("notify_script_path", p("notify.sh")),
        ("pid_path", p("fastnetmon.pid")),
        ("cli_stats_file_path", p("fastnetmon.dat")),
        ("cli_stats_ipv6_file_path", p("fastnetmon_ipv6.dat")),
    ]
}

/// Writes the config (`/etc/fastnetmon.conf` with `overrides`), the networks
/// list and the notify script into `dir`.
pub fn prepare(
    dir: &Path,
    overrides: &[(&str, String)],
    networks: &[String],
) -> Result<Files, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("writing {}: {e}", p.display()))?;
        Ok::<PathBuf, String>(p)
    };
    let base = std::fs::read_to_string("/etc/fastnetmon.conf").unwrap_or_default();
    let conf = write("fastnetmon.conf", &apply_overrides(&base, overrides))?;
    write(
        "networks_list",
        &networks
            .iter()
            .map(|n| format!("{n}\n"))
            .collect::<String>(),
    )?;
    write("networks_whitelist", "")?;
    let notify_log = dir.join("notify.log");
    let script = write(
        "notify.sh",
        &format!(
            "#!/bin/sh\necho \"$(date +%s%3N) $*\" >> '{}'\ncat > /dev/null\n",
            notify_log.display()
        ),
    )?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", script.display()))?;
    }
    Ok(Files { conf, notify_log })
}

/// `FastNetMon <version>` as the binary reports it.
pub fn version(bin: &Path) -> String {
    std::process::Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            let v = s.lines().next().unwrap_or("").trim();
            format!("FastNetMon {}", v.trim_start_matches("Version:").trim())
        })
        .unwrap_or_else(|_| "FastNetMon".into())
}

/// The wall-clock ms of the first `ban` line in the notify log.
pub fn ban_time(notify_log: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(notify_log).ok()?;
    text.lines()
        .filter(|l| l.trim_end().ends_with(" ban"))
        .find_map(|l| l.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_and_append() {
        let base =
            "# threshold_pps = 1\nthreshold_pps = 20000\ninterfaces = eth3,eth4\nother = x\n";
        let out = apply_overrides(
            base,
            &[
                ("threshold_pps", "2000".into()),
                ("interfaces", "lv-vic0".into()),
                ("prometheus", "off".into()),
            ],
        );
        assert_eq!(
            out,
            "# threshold_pps = 1\nthreshold_pps = 2000\ninterfaces = lv-vic0\nother = x\nprometheus = off\n"
        );
    }

    #[test]
    fn first_ban_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("n.log");
        std::fs::write(&log, "100 10.0.0.2 incoming 30000 attack_details\n250 10.0.0.2 incoming 30000 ban\n300 x y z ban\n").unwrap();
        assert_eq!(ban_time(&log), Some(250));
        assert_eq!(ban_time(&dir.path().join("none")), None);
    }
}
