//! particle: to be written.
