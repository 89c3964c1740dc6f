//! Verilator co-simulation of the OneBit accelerator (issue #4).
//!
//! The build script verilates the hdl crate's Verilog for each preset in
//! `ONEBIT_SIM_PRESETS` (default `sim16,ice40`); [`VerilatorDevice`] wraps a
//! model and implements the driver's `DevicePorts`.

mod ffi;
pub mod backend;
pub mod device;
pub mod icarus;
pub mod netlist_check;
pub mod suite;

include!(concat!(env!("OUT_DIR"), "/built_presets.rs"));

pub use device::{DeviceOptions, SimError, VerilatorDevice};
