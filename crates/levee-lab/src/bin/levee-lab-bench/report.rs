//! The benchmark's output: levee-lab's shared results table plus the
//! machine it ran on and the date.

pub use levee_lab::report::{num, results_table, table, Row};

/// Machine description: CPU count, model, kernel, and the date.
pub fn machine() -> String {
    levee_lab::machine::describe()
}
