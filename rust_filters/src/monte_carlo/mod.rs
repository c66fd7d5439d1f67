//! monte_carlo: to be written.
