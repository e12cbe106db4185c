//! The http-wasm adapter.
fn main() {}
