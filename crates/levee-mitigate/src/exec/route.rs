//! route (todo)
