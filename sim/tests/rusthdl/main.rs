//! The whole accelerator in rust-hdl's simulator, driven by the driver: one
//! binary so the accelerator's generic code is compiled once. Against the
//! reference (accelerator.rs), through the board's byte bridge (bridge.rs),
//! and the generated Verilog replaying rust-hdl runs in Icarus (iverilog.rs).

mod accelerator;
mod bridge;
mod common;
mod iverilog;
