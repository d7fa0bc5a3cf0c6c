//! Finding and removing a Levee XDP program that nobody owns any more.
//!
//! On start the agent asks: which XDP programs sit on this interface? A
//! program named [`PROGRAM_NAME`](crate::kernel::PROGRAM_NAME) that is not
//! this process's own is a leftover and is detached, unless a bpf_link holds
//! it: then a live process (another agent) owns it and it is left alone,
//! reported as such. Programs of other tools are never touched.
//!
//! The decision ([`plan`]) is pure; [`LinkControl`] is the seam in front of
//! netlink and the program table, so every case is unit-tested.

use crate::error::XdpError;
use crate::kernel::{describe, PROGRAM_NAME};
use crate::netlink::{self, Attached};
use std::io;

/// What reconcile did with one attached program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A leftover Levee program, now detached.
    Removed(Attached),
    /// This process's own program.
    Own(Attached),
    /// Another tool's program (its kernel name given), not touched.
    NotLevee(Attached, String),
    /// A Levee program held by a bpf_link, i.e. by a live process.
    HeldByLiveProcess(Attached),
}

/// What one interface held and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub ifname: String,
    pub outcomes: Vec<Outcome>,
}

impl Reconciled {
    /// The leftover programs that were removed.
    pub fn removed(&self) -> impl Iterator<Item = &Attached> {
        self.outcomes.iter().filter_map(|o| match o {
            Outcome::Removed(a) => Some(a),
            _ => None,
        })
    }
}

/// The kernel calls reconcile needs.
pub trait LinkControl {
    fn attached(&mut self, ifindex: u32) -> io::Result<Vec<Attached>>;
    fn detach(&mut self, ifindex: u32, a: Attached) -> io::Result<()>;
    /// The kernel name of program `prog_id` (`None` if it is gone).
    fn program_name(&mut self, prog_id: u32) -> io::Result<Option<String>>;
}

/// What to do with one attached program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Detach(Attached),
    Keep(Outcome),
}

/// Pure decision for one attached program.
pub fn plan(a: Attached, name: Option<&str>, own: Option<u32>) -> Step {
    if own == Some(a.prog_id) {
        return Step::Keep(Outcome::Own(a));
    }
    match name {
        Some(PROGRAM_NAME) => Step::Detach(a),
        other => Step::Keep(Outcome::NotLevee(a, other.unwrap_or("?").to_string())),
    }
}

/// Reconciles interface `ifname` (index `ifindex`) through `ctl`; `own` is
/// this process's program id, if it has one attached.
pub fn reconcile_with(
    ctl: &mut impl LinkControl,
    ifname: &str,
    ifindex: u32,
    own: Option<u32>,
) -> Result<Reconciled, XdpError> {
    let nl = |action: &'static str| {
        move |source: io::Error| XdpError::Netlink {
            ifname: ifname.to_string(),
            action,
            source,
        }
    };
    let mut outcomes = Vec::new();
    for a in ctl.attached(ifindex).map_err(nl("query XDP"))? {
        let name = ctl
            .program_name(a.prog_id)
            .map_err(nl("look up the program"))?;
        match plan(a, name.as_deref(), own) {
            Step::Keep(o) => outcomes.push(o),
            Step::Detach(a) => match ctl.detach(ifindex, a) {
                Ok(()) => outcomes.push(Outcome::Removed(a)),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    outcomes.push(Outcome::HeldByLiveProcess(a))
                }
                Err(e) => return Err(nl("detach XDP")(e)),
            },
        }
    }
    Ok(Reconciled {
        ifname: ifname.to_string(),
        outcomes,
    })
}

/// The real [`LinkControl`]: netlink and the kernel's program table.
#[derive(Debug, Default)]
pub struct KernelLinks;

impl LinkControl for KernelLinks {
    fn attached(&mut self, ifindex: u32) -> io::Result<Vec<Attached>> {
        netlink::attached(ifindex)
    }

    fn detach(&mut self, ifindex: u32, a: Attached) -> io::Result<()> {
        netlink::detach(ifindex, a.mode)
    }

    fn program_name(&mut self, prog_id: u32) -> io::Result<Option<String>> {
        for info in aya::programs::loaded_programs() {
            let info = info.map_err(|e| io::Error::other(describe(&e)))?;
            if info.id() == prog_id {
                return Ok(info.name_as_str().map(str::to_string));
            }
        }
        Ok(None)
    }
}

/// Removes leftover Levee XDP programs from `ifname` (see the module docs).
pub fn reconcile(ifname: &str) -> Result<Reconciled, XdpError> {
    let idx = netlink::ifindex(ifname)?;
    reconcile_with(&mut KernelLinks, ifname, idx, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::AttachedMode;
    use std::collections::HashMap;

    #[derive(Default)]
    struct FakeLinks {
        attached: Vec<Attached>,
        names: HashMap<u32, String>,
        busy: Vec<u32>,
        detached: Vec<Attached>,
    }

    impl LinkControl for FakeLinks {
        fn attached(&mut self, _: u32) -> io::Result<Vec<Attached>> {
            Ok(self.attached.clone())
        }
        fn detach(&mut self, _: u32, a: Attached) -> io::Result<()> {
            if self.busy.contains(&a.prog_id) {
                return Err(io::Error::from_raw_os_error(libc::EBUSY));
            }
            self.detached.push(a);
            Ok(())
        }
        fn program_name(&mut self, id: u32) -> io::Result<Option<String>> {
            Ok(self.names.get(&id).cloned())
        }
    }

    fn at(mode: AttachedMode, prog_id: u32) -> Attached {
        Attached { mode, prog_id }
    }

    #[test]
    fn leftover_levee_program_is_detached_others_are_not() {
        let mut f = FakeLinks {
            attached: vec![at(AttachedMode::Generic, 10), at(AttachedMode::Native, 11)],
            names: HashMap::from([(10, PROGRAM_NAME.to_string()), (11, "xdp_lb".into())]),
            ..Default::default()
        };
        let r = reconcile_with(&mut f, "eth0", 2, None).unwrap();
        assert_eq!(f.detached, vec![at(AttachedMode::Generic, 10)]);
        assert_eq!(
            r.outcomes,
            vec![
                Outcome::Removed(at(AttachedMode::Generic, 10)),
                Outcome::NotLevee(at(AttachedMode::Native, 11), "xdp_lb".into())
            ]
        );
        assert_eq!(r.removed().count(), 1);
    }

    #[test]
    fn own_and_link_held_programs_are_kept() {
        let mut f = FakeLinks {
            attached: vec![at(AttachedMode::Generic, 10)],
            names: HashMap::from([(10, PROGRAM_NAME.to_string())]),
            ..Default::default()
        };
        let r = reconcile_with(&mut f, "eth0", 2, Some(10)).unwrap();
        assert_eq!(
            r.outcomes,
            vec![Outcome::Own(at(AttachedMode::Generic, 10))]
        );
        f.busy.push(10);
        let r = reconcile_with(&mut f, "eth0", 2, None).unwrap();
        assert_eq!(
            r.outcomes,
            vec![Outcome::HeldByLiveProcess(at(AttachedMode::Generic, 10))]
        );
        assert!(f.detached.is_empty());
    }

    #[test]
    fn unnamed_programs_are_not_levee() {
        assert_eq!(
            plan(at(AttachedMode::Native, 3), None, None),
            Step::Keep(Outcome::NotLevee(at(AttachedMode::Native, 3), "?".into()))
        );
    }
}
