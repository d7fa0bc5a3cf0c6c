//! firewalld (todo)
