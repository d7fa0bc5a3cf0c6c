//! csf (todo)
