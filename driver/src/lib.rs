//! Host driver for the OneBit accelerator (first version).
//!
//! - [`wire`]: opcodes, command words, beat packing.
//! - [`program`]: compile a quantised layer and its activations into the
//!   command list and stream beats, and assemble the drained words.
//! - [`stream`]: the one cycle-level driver that runs a program over any
//!   device model implementing [`stream::DevicePorts`].
//! - [`bytelink`]: the byte framing of the board's serial link (host side of
//!   hdl's `ByteStreamBridge`), and a runner over any byte transport.

pub mod bytelink;
pub mod program;
pub mod stream;
pub mod wire;

pub use program::{Program, ProgramError};
pub use stream::{run, run_words, DevicePorts, RunError, RunStats, StallPolicy};
pub use wire::{Command, Opcode};
