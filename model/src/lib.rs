//! `onebit-model`: the LLaMA-architecture decoder shared by the trainer and the
//! evaluator, in candle.
//!
//! One definition ([`Llama`]) with pluggable linears inside the blocks
//! ([`BlockLinear`]): full precision, OneBit in training form (latent weights
//! with a straight-through sign, g, h, LayerNorm without affine), or OneBit
//! executed by a [`onebit_core::backend::LinearBackend`]. Around it: Hugging Face
//! `LlamaForCausalLM` checkpoints in and out ([`checkpoint`]), GGUF files in
//! ([`gguf`]), 1-bit model files in ([`checkpoint::load_onebit_model`]),
//! tokenizers ([`tokenizer`]), perplexity ([`perplexity`]) and generation
//! ([`generate`]).
//!
//! Everything runs in f32. The crate knows nothing of devices beyond the
//! `LinearBackend` trait: the hardware backend is built by the driver.
//!
//! Typical uses:
//! ```no_run
//! # fn main() -> Result<(), onebit_model::ModelError> {
//! use onebit_model::{checkpoint, Llama};
//! // Evaluate a Hugging Face checkpoint in full precision.
//! let model = checkpoint::load_hf_dir(std::path::Path::new("teacher"), &candle_core::Device::Cpu)?;
//! let ids = candle_core::Tensor::new(&[[1u32, 5, 17]], &candle_core::Device::Cpu)?;
//! let logits = model.forward(&ids)?; // (1, 3, vocab)
//! # Ok(()) }
//! ```

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod linear;
pub mod llama;
pub mod perplexity;
pub mod tokenizer;
pub mod train_ops;

pub use config::LlamaConfig;
pub use error::ModelError;
pub use linear::{sign_ste, BackendLinear, BlockLinear, LinearKind, OneBitTrainLinear};
pub use llama::{Block, ForwardOutput, KvCache, Llama, LINEAR_NAMES};

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;

/// The candle crates this model is written in, for callers that need the same versions.
pub use candle_core;
pub use candle_nn;
