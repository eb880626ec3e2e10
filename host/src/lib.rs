//! nas-host: neural architecture search with a candle training core and
//! search strategies and search spaces as sandboxed WebAssembly components.
//!
//! Data flows one way: config → run plan → plugins propose → trials train →
//! store records → reports read the store. This crate is the library behind
//! the thin `nas-host` binary.
// Nothing reachable from plugin output, a data file or a config may panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod assignment;
pub mod commands;
pub mod compare;
pub mod config;
pub mod data;
pub mod device;
pub(crate) mod evaluator;
pub mod executor;
pub(crate) mod export;
pub mod interrupt;
pub mod ir;
pub(crate) mod lock;
pub(crate) mod memory;
pub mod network;
pub mod onnx;
pub(crate) mod plot;
pub mod plugin;
pub mod progress;
pub mod proxy;
pub mod prune;
pub mod quant;
pub(crate) mod report;
pub(crate) mod results;
pub mod search;
pub mod store;
pub mod table;
pub mod train;
pub mod trial;
