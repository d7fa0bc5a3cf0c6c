//! sysctl (todo)
