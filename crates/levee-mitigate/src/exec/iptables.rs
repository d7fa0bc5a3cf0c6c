//! iptables (todo)
