//! ufw (todo)
