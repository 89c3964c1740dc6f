//! The hdl crate's tests, in one binary so the accelerator's generic code is
//! compiled once: blocks against the numerics contract, the whole accelerator
//! against the reference, Verilog lint and elaboration, and the Verilog
//! replaying rust-hdl runs in Icarus Verilog.

mod accelerator;
mod blocks;
mod bridge;
mod common;
mod iverilog;
mod verilog;
