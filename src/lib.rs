//! onebit (library): the end-to-end evaluations that need every crate at once
//! (a teacher, a 1-bit model file, the integer reference and the Verilated
//! accelerator). The `onebit` binary only parses arguments and calls these.

pub mod e2e;
pub mod precision;
