//! ipset (todo)
