//! [`InterfaceFilter`]: which interfaces of `/proc/net/dev` a source reports.

/// Which interfaces to sample.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InterfaceFilter {
    /// Every interface except the loopback `lo`, whose traffic is the host
    /// talking to itself and would only dilute the baselines.
    #[default]
    AllExceptLoopback,
    /// Exactly these names (those that exist; a missing one is simply absent).
    Only(Vec<String>),
}

impl InterfaceFilter {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            InterfaceFilter::AllExceptLoopback => name != "lo",
            InterfaceFilter::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_excludes_only_lo() {
        let f = InterfaceFilter::default();
        assert!(!f.matches("lo"));
        assert!(f.matches("eth0"));
        assert!(f.matches("lo0"));
    }

    #[test]
    fn explicit_list_is_exact() {
        let f = InterfaceFilter::Only(vec!["eth0".into(), "lo".into()]);
        assert!(f.matches("eth0"));
        assert!(f.matches("lo"));
        assert!(!f.matches("eth1"));
        assert!(!f.matches("eth"));
    }
}
