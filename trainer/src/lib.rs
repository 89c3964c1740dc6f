//! `onebit-trainer`: produce the 1-bit weights the driver streams, in Rust.
//!
//! teacher from scratch ([`teacher`]) → SVID initialisation ([`svid`],
//! [`student`]) → knowledge distillation ([`distill`]) → the packed 1-bit model
//! file ([`export`]). The decoder itself is `onebit_model::Llama`, shared with
//! the evaluator; this crate adds the losses ([`loss`]), the optimiser and
//! schedule ([`optim`]), batches ([`data`]), checkpoints that resume bit for
//! bit ([`checkpoint`]), Ctrl-C handling ([`interrupt`]) and the loss curve
//! ([`curve`]). See docs/trainer.md.

pub mod checkpoint;
pub mod curve;
pub mod data;
pub mod interrupt;
pub mod loss;
pub mod memory;
pub mod optim;
pub mod ppl_report;
pub mod svid;
pub mod distill;
pub mod export;
pub mod runner;
pub mod student;
pub mod teacher;

/// The device training runs on: the first CUDA GPU when built with the `cuda`
/// feature and one is present, the CPU otherwise.
pub fn default_device() -> candle_core::Result<candle_core::Device> {
    if cfg!(feature = "cuda") {
        candle_core::Device::cuda_if_available(0)
    } else {
        Ok(candle_core::Device::Cpu)
    }
}
