//! A wasmtime host for http-wasm guests.
