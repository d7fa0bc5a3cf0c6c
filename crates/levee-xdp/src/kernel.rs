//! The real kernel behind the seams: the clang-built object embedded at build
//! time, loading it with aya, [`KernelMaps`] (the [`FilterMaps`] on the
//! program's BPF maps) and `BPF_PROG_TEST_RUN`.

use crate::error::XdpError;
use crate::maps::{Counters, FilterMaps, Totals};
use crate::prefix::LpmKey;
use crate::table::{MapOp, TABLE_SIZE};
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, MapData, PerCpuArray, PerCpuValues};
use aya::programs::Xdp;
use aya::Ebpf;
use std::os::fd::{AsFd, AsRawFd};

/// The program's function name, which is also its kernel name (what
/// `bpftool prog` and reconcile see).
pub const PROGRAM_NAME: &str = "levee_xdp";

/// The program object clang built, or why there is none.
#[cfg(levee_xdp_built)]
pub fn object() -> Result<&'static [u8], XdpError> {
    Ok(aya::include_bytes_aligned!(concat!(
        env!("OUT_DIR"),
        "/levee_xdp.o"
    )))
}

/// The program object clang built, or why there is none.
#[cfg(not(levee_xdp_built))]
pub fn object() -> Result<&'static [u8], XdpError> {
    Err(XdpError::NotBuilt {
        missing: env!("LEVEE_XDP_MISSING"),
    })
}

/// `Ok` when this build carries the XDP program (no kernel access).
pub fn available() -> Result<(), XdpError> {
    object().map(|_| ())
}

/// An error and its sources on one line, kept to a readable length (the
/// verifier log of a failed load can run to thousands of lines; its tail
/// says why).
pub(crate) fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    const MAX: usize = 3000;
    if s.len() > MAX {
        let cut = s.len() - MAX;
        let cut = (cut..s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(s.len());
        s = format!("...{}", &s[cut..]);
    }
    s
}

/// The loaded (not yet attached) program and its maps.
pub struct Loaded {
    pub ebpf: Ebpf,
    pub maps: KernelMaps,
}

/// Loads the object into the kernel (verifier included) and takes its maps.
pub fn load() -> Result<Loaded, XdpError> {
    let bytes = object()?;
    let mut ebpf = Ebpf::load(bytes).map_err(|e| XdpError::Load {
        detail: describe(&e),
    })?;
    let prog: &mut Xdp = program(&mut ebpf)?;
    prog.load().map_err(|e| XdpError::Load {
        detail: describe(&e),
    })?;
    let maps = KernelMaps::take(&mut ebpf)?;
    Ok(Loaded { ebpf, maps })
}

pub(crate) fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    ebpf.program_mut(PROGRAM_NAME)
        .ok_or_else(|| XdpError::Load {
            detail: format!("the object has no program {PROGRAM_NAME}"),
        })?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| XdpError::Load {
            detail: describe(&e),
        })
}

pub(crate) fn program_ref(ebpf: &Ebpf) -> Result<&Xdp, XdpError> {
    ebpf.program(PROGRAM_NAME)
        .ok_or_else(|| XdpError::Load {
            detail: format!("the object has no program {PROGRAM_NAME}"),
        })?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| XdpError::Load {
            detail: describe(&e),
        })
}

fn map_err(map: &'static str, action: &'static str) -> impl Fn(aya::maps::MapError) -> XdpError {
    move |e| XdpError::Map {
        map,
        action,
        detail: describe(&e),
    }
}

/// The program's maps (see `bpf/levee_xdp.c` for their layout).
pub struct KernelMaps {
    rules: Array<MapData, [u8; TABLE_SIZE]>,
    meta: Array<MapData, u32>,
    src_v4: LpmTrie<MapData, [u8; 4], u32>,
    src_v6: LpmTrie<MapData, [u8; 16], u32>,
    stats: PerCpuArray<MapData, [u64; 2]>,
    totals: PerCpuArray<MapData, [u64; 2]>,
    nr_cpus: usize,
}

impl std::fmt::Debug for KernelMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KernelMaps")
    }
}

impl KernelMaps {
    fn take(ebpf: &mut Ebpf) -> Result<KernelMaps, XdpError> {
        fn get<T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(
            ebpf: &mut Ebpf,
            name: &'static str,
        ) -> Result<T, XdpError> {
            let map = ebpf.take_map(name).ok_or(XdpError::Map {
                map: name,
                action: "open",
                detail: "missing from the program object".into(),
            })?;
            T::try_from(map).map_err(map_err(name, "open"))
        }
        let nr_cpus = aya::util::nr_cpus().map_err(|(what, e)| XdpError::Map {
            map: "stats",
            action: "count CPUs",
            detail: format!("{what}: {e}"),
        })?;
        Ok(KernelMaps {
            rules: get(ebpf, "rules")?,
            meta: get(ebpf, "meta")?,
            src_v4: get(ebpf, "src_v4")?,
            src_v6: get(ebpf, "src_v6")?,
            stats: get(ebpf, "stats")?,
            totals: get(ebpf, "totals")?,
            nr_cpus,
        })
    }

    fn read(
        map: &PerCpuArray<MapData, [u64; 2]>,
        name: &'static str,
        index: u32,
    ) -> Result<Counters, XdpError> {
        let values = map.get(&index, 0).map_err(map_err(name, "read"))?;
        let mut c = Counters::default();
        for v in values.iter() {
            c += Counters {
                packets: v[0],
                bytes: v[1],
            };
        }
        Ok(c)
    }
}

impl FilterMaps for KernelMaps {
    fn apply(&mut self, op: &MapOp) -> Result<(), XdpError> {
        match op {
            MapOp::ZeroStats { slot } => {
                let zero = PerCpuValues::try_from(vec![[0u64; 2]; self.nr_cpus]).map_err(|e| {
                    XdpError::Map {
                        map: "stats",
                        action: "zero",
                        detail: e.to_string(),
                    }
                })?;
                self.stats
                    .set(*slot, zero, 0)
                    .map_err(map_err("stats", "zero"))
            }
            MapOp::WriteRules { buffer, table } => self
                .rules
                .set(*buffer, **table, 0)
                .map_err(map_err("rules", "write")),
            MapOp::Activate { buffer } => self
                .meta
                .set(0, buffer, 0)
                .map_err(map_err("meta", "write")),
            MapOp::InsertPrefix { key, slot } => match key {
                LpmKey::V4 { len, addr } => self
                    .src_v4
                    .insert(&Key::new(u32::from(*len), *addr), slot, 0)
                    .map_err(map_err("src_v4", "insert")),
                LpmKey::V6 { len, addr } => self
                    .src_v6
                    .insert(&Key::new(u32::from(*len), *addr), slot, 0)
                    .map_err(map_err("src_v6", "insert")),
            },
            MapOp::RemovePrefix { key } => match key {
                LpmKey::V4 { len, addr } => self
                    .src_v4
                    .remove(&Key::new(u32::from(*len), *addr))
                    .map_err(map_err("src_v4", "delete")),
                LpmKey::V6 { len, addr } => self
                    .src_v6
                    .remove(&Key::new(u32::from(*len), *addr))
                    .map_err(map_err("src_v6", "delete")),
            },
        }
    }

    fn stats(&self, slot: u32) -> Result<Counters, XdpError> {
        Self::read(&self.stats, "stats", slot)
    }

    fn totals(&self) -> Result<Totals, XdpError> {
        Ok(Totals {
            seen: Self::read(&self.totals, "totals", 0)?,
            dropped: Self::read(&self.totals, "totals", 1)?,
        })
    }
}

/// What an XDP program returned (`enum xdp_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpAction {
    Aborted,
    Drop,
    Pass,
    Tx,
    Redirect,
    Other(u32),
}

impl From<u32> for XdpAction {
    fn from(v: u32) -> Self {
        match v {
            0 => XdpAction::Aborted,
            1 => XdpAction::Drop,
            2 => XdpAction::Pass,
            3 => XdpAction::Tx,
            4 => XdpAction::Redirect,
            n => XdpAction::Other(n),
        }
    }
}

/// One `BPF_PROG_TEST_RUN`: the action and the mean run time per repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestRun {
    pub action: XdpAction,
    pub duration_ns: u32,
}

/// The `test` member of `union bpf_attr` (linux/bpf.h), up to `cpu`; the
/// kernel zero-fills the members after the size it is given.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
}

const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// Runs the loaded program `repeat` times on `frame` in the kernel, without
/// any interface (counters are updated as for a real packet).
pub fn test_run(prog: &Xdp, frame: &[u8], repeat: u32) -> Result<TestRun, XdpError> {
    let fd = prog.fd().map_err(|e| XdpError::TestRun {
        source: std::io::Error::other(describe(&e)),
    })?;
    let mut out = vec![0u8; frame.len() + 512];
    let mut attr = TestRunAttr {
        prog_fd: fd.as_fd().as_raw_fd() as u32,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: repeat.max(1),
        ..Default::default()
    };
    // SAFETY: `attr` is a valid, initialised bpf_attr prefix whose size is
    // passed; `data_in` points to `frame.len()` readable bytes and `data_out`
    // to `out.len()` writable bytes, both alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut attr as *mut TestRunAttr,
            std::mem::size_of::<TestRunAttr>() as libc::c_uint,
        )
    };
    if rc < 0 {
        return Err(XdpError::TestRun {
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(TestRun {
        action: XdpAction::from(attr.retval),
        duration_ns: attr.duration,
    })
}
