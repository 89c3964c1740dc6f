//! Host driver for the OneBit accelerator.
//!
//! - [`program`]: compile a quantised layer and its activations into the
//!   command list and stream beats (the wire protocol is
//!   `onebit_core::wire`), and assemble the drained beats.
//! - [`device`]: the transport-agnostic [`Device`] trait, the cycle-level
//!   [`PortDevice`] for anything with pins, and [`run_layer`], which turns
//!   every failure into an error naming the layer, tile and phase.
//! - [`bytelink`]: the board's serial link, as a simulated
//!   ([`bytelink::ByteLinkDevice`]) or a real ([`bytelink::SerialLink`]) device.
//! - [`faults`]: devices broken on purpose, for the tests.

pub mod bytelink;
pub mod device;
pub mod faults;
pub mod program;

pub use device::{run_layer, run_layer_checked, Deadline, Device, DriverError, Fault, Job, LayerRun, PortDevice, Progress, StallPolicy};
pub use onebit_core::wire::{Command, Opcode};
pub use program::{Phase, Program, ProgramError, Step};
