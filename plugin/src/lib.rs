//! Cohort's decision core: pure Rust, no host calls.
