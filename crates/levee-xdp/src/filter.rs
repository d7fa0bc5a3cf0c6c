//! [`XdpFilter`]: the loaded program, its rule set and its attachment to one
//! interface. Dropping it detaches the program (aya closes the bpf_link) and
//! unloads it; if the process is killed the kernel does the same, so no XDP
//! rule outlives the agent that installed it.

use crate::error::XdpError;
use crate::kernel::{self, describe, KernelMaps, TestRun};
use crate::maps::{Counters, RuleSet, Totals};
use crate::netlink::{self, AttachedMode};
use crate::reconcile::{self, KernelLinks, Reconciled};
use crate::rule::FingerprintMatch;
use crate::table::RuleId;
use aya::programs::{xdp::XdpLinkId, XdpFlags};
use aya::Ebpf;
use levee_packet::classify::IpPrefix;
use std::collections::BTreeMap;

/// Where to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In the driver: the earliest, cheapest drop; needs driver support.
    Native,
    /// The generic skb hook: works on every interface, costs an skb per packet.
    Generic,
    /// Native when the driver takes it, else generic.
    Auto,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Generic => "generic",
            Mode::Auto => "auto",
        }
    }
}

#[derive(Debug)]
struct Attachment {
    ifname: String,
    mode: AttachedMode,
    link: XdpLinkId,
}

/// The Levee XDP program, loaded, with its rules and (once attached) its
/// interface.
pub struct XdpFilter {
    rules: RuleSet<KernelMaps>,
    attachment: Option<Attachment>,
    prog_id: u32,
    // Last: dropping it detaches and unloads the program.
    ebpf: Ebpf,
}

impl std::fmt::Debug for XdpFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpFilter")
            .field("prog_id", &self.prog_id)
            .field("attachment", &self.attachment)
            .finish_non_exhaustive()
    }
}

impl XdpFilter {
    /// Loads the program (the kernel verifies it) with empty rules, not
    /// attached anywhere. Needs root (or CAP_BPF + CAP_PERFMON).
    pub fn load() -> Result<XdpFilter, XdpError> {
        let mut loaded = kernel::load()?;
        let prog_id = kernel::program(&mut loaded.ebpf)?
            .info()
            .map_err(|e| XdpError::Load {
                detail: describe(&e),
            })?
            .id();
        Ok(XdpFilter {
            rules: RuleSet::new(loaded.maps)?,
            attachment: None,
            prog_id,
            ebpf: loaded.ebpf,
        })
    }

    /// Loads the program and attaches it to `ifname`.
    pub fn attach(ifname: &str, mode: Mode) -> Result<XdpFilter, XdpError> {
        let mut f = XdpFilter::load()?;
        f.attach_to(ifname, mode)?;
        Ok(f)
    }

    /// Attaches the loaded program to `ifname` (detaching it from where it
    /// was); returns the mode the kernel took.
    pub fn attach_to(&mut self, ifname: &str, mode: Mode) -> Result<AttachedMode, XdpError> {
        let ifindex = netlink::ifindex(ifname)?;
        self.detach()?;
        let tries: &[AttachedMode] = match mode {
            Mode::Native => &[AttachedMode::Native],
            Mode::Generic => &[AttachedMode::Generic],
            Mode::Auto => &[AttachedMode::Native, AttachedMode::Generic],
        };
        let prog = kernel::program(&mut self.ebpf)?;
        let mut errors = Vec::new();
        for &m in tries {
            match prog.attach_to_if_index(ifindex, XdpFlags::from_bits_retain(m.flag())) {
                Ok(link) => {
                    self.attachment = Some(Attachment {
                        ifname: ifname.to_string(),
                        mode: m,
                        link,
                    });
                    return Ok(m);
                }
                Err(e) => errors.push(format!("{}: {}", m.name(), describe(&e))),
            }
        }
        Err(XdpError::Attach {
            ifname: ifname.to_string(),
            mode: mode.name(),
            detail: errors.join("; "),
        })
    }

    /// Detaches from the interface (no-op when not attached). Rules and
    /// counters stay; the program stays loaded.
    pub fn detach(&mut self) -> Result<(), XdpError> {
        let Some(a) = self.attachment.take() else {
            return Ok(());
        };
        kernel::program(&mut self.ebpf)?
            .detach(a.link)
            .map_err(|e| XdpError::Detach {
                ifname: a.ifname.clone(),
                detail: describe(&e),
            })
    }

    /// The interface and mode, when attached.
    pub fn attachment(&self) -> Option<(&str, AttachedMode)> {
        self.attachment
            .as_ref()
            .map(|a| (a.ifname.as_str(), a.mode))
    }

    /// The kernel's id of this program (as `ip link` and `bpftool` show it).
    pub fn program_id(&self) -> u32 {
        self.prog_id
    }

    /// Drops every packet whose source is in `prefix`, counted under `id`.
    pub fn add_source(&mut self, prefix: IpPrefix, id: RuleId) -> Result<(), XdpError> {
        self.rules.add_source(prefix, id)
    }

    /// Stops dropping `prefix`; the id that held it, if any.
    pub fn remove_source(&mut self, prefix: IpPrefix) -> Result<Option<RuleId>, XdpError> {
        self.rules.remove_source(prefix)
    }

    /// Drops packets matching `m`, counted under `id` (an id may hold
    /// several entries; the first matching entry in insertion order counts).
    pub fn add_rule(&mut self, id: RuleId, m: &FingerprintMatch) -> Result<(), XdpError> {
        self.rules.add_rule(id, m)
    }

    /// Removes `id`'s fingerprint entries; its counters just before.
    pub fn remove_rule(&mut self, id: RuleId) -> Result<Counters, XdpError> {
        self.rules.remove_rule(id)
    }

    /// Packets and bytes dropped per id in use, summed over CPUs.
    pub fn counters(&self) -> Result<BTreeMap<RuleId, Counters>, XdpError> {
        self.rules.counters()
    }

    /// Everything the program saw and dropped since it was loaded.
    pub fn totals(&self) -> Result<Totals, XdpError> {
        self.rules.totals()
    }

    /// Fingerprint entries in match order.
    pub fn rules(&self) -> &[(RuleId, FingerprintMatch)] {
        self.rules.rules()
    }

    /// Source prefixes and their ids.
    pub fn sources(&self) -> &BTreeMap<IpPrefix, RuleId> {
        self.rules.sources()
    }

    /// Runs the program on `frame` in the kernel (`BPF_PROG_TEST_RUN`),
    /// `repeat` times, attached or not; counters count it like a real packet.
    pub fn test_run(&self, frame: &[u8], repeat: u32) -> Result<TestRun, XdpError> {
        kernel::test_run(kernel::program_ref(&self.ebpf)?, frame, repeat)
    }

    /// [`reconcile`](crate::reconcile()) on `ifname`, keeping this filter's
    /// own program.
    pub fn reconcile(&self, ifname: &str) -> Result<Reconciled, XdpError> {
        let idx = netlink::ifindex(ifname)?;
        reconcile::reconcile_with(&mut KernelLinks, ifname, idx, Some(self.prog_id))
    }
}

impl Drop for XdpFilter {
    fn drop(&mut self) {
        // Explicit so a failure is at least visible; `ebpf` would detach anyway.
        if let Err(e) = self.detach() {
            tracing::warn!("{e}");
        }
    }
}
