//! The OneBit accelerator in RustHDL (issue #3): a weight-stationary
//! sign-accumulate systolic array with its scalers, accumulators and
//! controller, all widths taken from `onebit_core::ArrayConfig`.
//!
//! Blocks (one per file): [`SignAccumulatePe`], [`SystolicArray`],
//! [`GScaler`], [`OutputAccumulator`], [`HScaler`], [`OutputFifo`],
//! [`Controller`], [`OneBitAccelerator`]; [`timing`] holds the pipeline
//! depths they share. [`presets`] instantiates the accelerator for each
//! named preset; [`verilog`] writes and checks its Verilog.

pub mod accumulator;
pub mod array;
pub mod bitstream;
pub mod board;
pub mod bridge;
pub mod controller;
pub mod device;
pub mod fifo;
pub mod gscaler;
pub mod hscaler;
pub mod netlist;
pub mod pe;
pub mod pll;
pub mod presets;
pub mod timing;
pub mod top;
pub mod uart;
pub mod util;
pub mod verilog;

pub use accumulator::{AccumulatorBank, OutputAccumulator};
pub use array::SystolicArray;
pub use controller::Controller;
pub use fifo::OutputFifo;
pub use gscaler::{GScaler, GScalerBank};
pub use hscaler::HScaler;
pub use pe::SignAccumulatePe;
pub use top::OneBitAccelerator;

#[doc(hidden)]
pub use rust_hdl;
