//! ukf: to be written.
