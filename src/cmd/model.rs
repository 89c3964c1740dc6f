//! `onebit logits` and `onebit ppl`: run the decoder of onebit-model on a
//! Hugging Face directory (full precision) or a 1-bit model file (OneBit linears
//! on a backend).

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use onebit_core::backend::{FloatBackend, LinearBackend, ReferenceBackend};
use onebit_core::ArrayConfig;
use onebit_model::checkpoint::{self, TOKENIZER_FILE};
use onebit_model::perplexity::{perplexity, PplOptions};
use onebit_model::tokenizer::{read_text, TextTokenizer};
use onebit_model::Llama;
use std::path::{Path, PathBuf};

/// Where OneBit linears run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// f32 (for a full-precision Hugging Face model: plain full precision).
    Float,
    /// The bit-exact integer reference of the accelerator (1-bit model files).
    Reference,
    /// The accelerator through the host driver.
    Hardware,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Float => "float",
            Backend::Reference => "reference",
            Backend::Hardware => "hardware",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    /// A Hugging Face LlamaForCausalLM directory or a 1-bit model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Where the OneBit linears run.
    #[arg(long, value_enum, default_value = "float")]
    pub backend: Backend,
    /// Array configuration of the reference backend (sim16, ecp5, ice40).
    #[arg(long, default_value = "sim16")]
    pub preset: String,
}

#[derive(clap::Args, Debug)]
pub struct LogitsArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Token ids, comma-separated (e.g. 1,5,17).
    #[arg(long)]
    pub ids: String,
    /// Print `{"logits": [[...], ...]}` (one row per position).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct PplArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text to evaluate (read whole, tokenized once).
    #[arg(long)]
    pub data: PathBuf,
    /// tokenizer.json (default: inside the model directory, or beside the 1-bit file).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Tokens per chunk (default: min(2048, the model's max_position_embeddings)).
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// Sliding windows moved by this many tokens (Hugging Face guide) instead of disjoint chunks.
    #[arg(long)]
    pub stride: Option<usize>,
    /// Evaluate at most this many chunks.
    #[arg(long)]
    pub max_chunks: Option<usize>,
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// Load the decoder for `--model` on `--backend`.
fn load_model(a: &ModelArgs) -> anyhow::Result<Llama> {
    let dev = Device::Cpu;
    if a.model.is_dir() {
        if a.backend != Backend::Float {
            bail!(
                "{}: backend `{}` runs OneBit linears and needs a 1-bit model file; this is a full-precision Hugging Face directory (use --backend float)",
                a.model.display(),
                a.backend.name()
            );
        }
        return Ok(checkpoint::load_hf_dir(&a.model, &dev)?);
    }
    if !a.model.exists() {
        bail!(
            "{}: no such file or directory (expected a Hugging Face model directory or a 1-bit model file)",
            a.model.display()
        );
    }
    let file = checkpoint::read_onebit_file(&a.model)?;
    let eps = file.quantisation.layer_norm_eps;
    let backend: Box<dyn LinearBackend> = match a.backend {
        Backend::Float => Box::new(FloatBackend { layer_norm_eps: eps }),
        Backend::Reference => {
            let config = ArrayConfig::preset(&a.preset).map_err(|e| anyhow::anyhow!("--preset: {e}"))?;
            Box::new(ReferenceBackend { config, layer_norm_eps: eps })
        }
        Backend::Hardware => {
            ArrayConfig::preset(&a.preset).map_err(|e| anyhow::anyhow!("--preset: {e}"))?;
            Box::new(onebit_sim::backend::VerilatorBackend::new(&a.preset, eps)?)
        }
    };
    Ok(checkpoint::onebit_decoder(&file, &a.model, backend.as_ref(), &dev)?)
}

fn parse_ids(s: &str) -> anyhow::Result<Vec<u32>> {
    let ids: Vec<u32> = s
        .split(',')
        .map(|t| t.trim().parse::<u32>().with_context(|| format!("--ids: `{}` is not a token id", t.trim())))
        .collect::<anyhow::Result<_>>()?;
    if ids.is_empty() {
        bail!("--ids: no token ids given");
    }
    Ok(ids)
}

pub fn logits(a: LogitsArgs) -> anyhow::Result<()> {
    let ids = parse_ids(&a.ids)?;
    let model = load_model(&a.model)?;
    let input = Tensor::new(ids.as_slice(), model.device())?;
    let logits: Vec<Vec<f32>> = model.forward(&input)?.squeeze(0)?.to_vec2()?;
    if a.json {
        println!("{}", serde_json::json!({ "logits": logits }));
    } else {
        for (pos, (id, row)) in ids.iter().zip(&logits).enumerate() {
            let text: Vec<String> = row.iter().map(|v| format!("{v:.6}")).collect();
            println!("position {pos} (id {id}): {}", text.join(" "));
        }
    }
    Ok(())
}

fn default_tokenizer(model: &Path) -> PathBuf {
    if model.is_dir() {
        model.join(TOKENIZER_FILE)
    } else {
        model.parent().unwrap_or(Path::new(".")).join(TOKENIZER_FILE)
    }
}

pub fn ppl(a: PplArgs) -> anyhow::Result<()> {
    let model = load_model(&a.model)?;
    let tok_path = a.tokenizer.clone().unwrap_or_else(|| default_tokenizer(&a.model.model));
    let tokenizer = TextTokenizer::from_file(&tok_path)?;
    let text = read_text(&a.data)?;
    let ids = tokenizer.encode(&text, &a.data)?;
    let seq_len = a.seq_len.unwrap_or_else(|| model.config.max_position_embeddings.min(2048));
    let opts = PplOptions { seq_len, stride: a.stride, max_chunks: a.max_chunks, progress: true };
    let start = std::time::Instant::now();
    let r = perplexity(&model, &ids, &opts, &a.data)?;
    let seconds = start.elapsed().as_secs_f64();
    if a.json {
        let v = serde_json::json!({
            "ppl": r.ppl,
            "tokens": r.tokens,
            "backend": a.model.backend.name(),
            "mean_nll": r.mean_nll,
            "text_tokens": r.text_tokens,
            "chunks": r.chunks,
            "seq_len": r.seq_len,
            "stride": r.stride,
            "model": a.model.model,
            "data": a.data,
            "tokenizer": tok_path,
            "seconds": seconds,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let how = match r.stride {
            None => format!("{} disjoint chunks of {} tokens", r.chunks, r.seq_len),
            Some(s) => format!("{} windows of {} tokens, stride {s}", r.chunks, r.seq_len),
        };
        println!("backend:   {}", a.model.backend.name());
        println!("evaluated: {} tokens ({how}; text has {} tokens)", r.tokens, r.text_tokens);
        println!("PPL:       {:.4}", r.ppl);
    }
    Ok(())
}
