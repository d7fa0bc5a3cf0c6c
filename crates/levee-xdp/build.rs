//! Builds the XDP program (bpf/levee_xdp.c) with clang when clang and the
//! libbpf / kernel UAPI headers are present.
//!
//! - Prerequisites present: compiles `OUT_DIR/levee_xdp.o` and sets
//!   `cfg(levee_xdp_built)`; a compile error in the C program then fails the
//!   build (it is a bug, not a missing package).
//! - Prerequisites missing: the crate builds without the program, and
//!   `LEVEE_XDP_MISSING` carries what is missing, so loading fails at run time
//!   with an error naming the Debian packages to install.
//!
//! `CLANG` overrides the compiler; `LEVEE_XDP_DISABLE=1` builds without the
//! program (to check the fallback path).

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = "bpf/levee_xdp.c";
/// Debian packages that provide what the build needs.
const PACKAGES: &str = "clang libbpf-dev linux-libc-dev";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(levee_xdp_built)");
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-env-changed=LEVEE_XDP_DISABLE");

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    match build(&out) {
        Ok(()) => println!("cargo:rustc-cfg=levee_xdp_built"),
        Err(missing) => {
            println!("cargo:warning=levee-xdp: building without the XDP program: {missing}");
            println!("cargo:rustc-env=LEVEE_XDP_MISSING={missing}");
        }
    }
}

/// `Err(what is missing)` when the prerequisites are absent; panics when they
/// are present but the program does not compile.
fn build(out: &Path) -> Result<(), String> {
    if std::env::var("LEVEE_XDP_DISABLE").is_ok_and(|v| v == "1") {
        return Err("LEVEE_XDP_DISABLE=1 was set at build time".into());
    }
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let version = Command::new(&clang).arg("--version").output();
    if !version.is_ok_and(|o| o.status.success()) {
        return Err(format!("`{clang}` not found (Debian packages: {PACKAGES})"));
    }
    let target = match std::env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() {
        Ok("big") => "bpfeb",
        _ => "bpfel",
    };
    // The UAPI headers include <asm/types.h>, which Debian keeps under the
    // multiarch directory that `-target bpf` does not search; naming it here
    // avoids needing gcc-multilib's /usr/include/asm symlink.
    let mut includes = Vec::new();
    if let Some(dir) = multiarch_include() {
        includes.push(format!("-I{}", dir.display()));
    }

    // Probe the headers first, so a missing package is told apart from a bug.
    let probe = out.join("levee_xdp_probe.c");
    std::fs::write(
        &probe,
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n",
    )
    .map_err(|e| format!("writing {}: {e}", probe.display()))?;
    let probed = Command::new(&clang)
        .args(["-target", target, "-fsyntax-only"])
        .args(&includes)
        .arg(&probe)
        .output()
        .map_err(|e| format!("running {clang}: {e}"))?;
    if !probed.status.success() {
        let stderr = String::from_utf8_lossy(&probed.stderr);
        let what = if stderr.contains("bpf/bpf_helpers.h") {
            "libbpf headers <bpf/bpf_helpers.h> not found"
        } else if stderr.contains("asm/") || stderr.contains("linux/") {
            "kernel UAPI headers <linux/bpf.h> / <asm/types.h> not found"
        } else {
            "clang cannot compile for the BPF target"
        };
        return Err(format!(
            "{what} (Debian packages: {PACKAGES}); clang said: {}",
            stderr.lines().next().unwrap_or("").trim()
        ));
    }

    let object = out.join("levee_xdp.o");
    let compiled = Command::new(&clang)
        .args(["-target", target, "-O2", "-g", "-Wall", "-Werror"])
        .args(&includes)
        .args(["-c", SOURCE, "-o"])
        .arg(&object)
        .output()
        .map_err(|e| format!("running {clang}: {e}"))?;
    if !compiled.status.success() {
        panic!(
            "clang failed to compile {SOURCE}:\n{}",
            String::from_utf8_lossy(&compiled.stderr)
        );
    }
    Ok(())
}

/// `/usr/include/<multiarch triple>` of the build host, when it exists.
fn multiarch_include() -> Option<PathBuf> {
    let triple = match std::env::consts::ARCH {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "arm" => "arm-linux-gnueabihf",
        "riscv64" => "riscv64-linux-gnu",
        "powerpc64" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        _ => return None,
    };
    let dir = Path::new("/usr/include").join(triple);
    dir.join("asm").is_dir().then_some(dir)
}
