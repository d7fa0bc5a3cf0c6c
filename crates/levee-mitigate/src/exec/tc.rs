//! tc (todo)
