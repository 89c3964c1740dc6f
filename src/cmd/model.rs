//! `onebit logits`, `onebit ppl` and `onebit generate`: run the decoder of
//! onebit-model on a Hugging Face directory or a GGUF file (full precision) or
//! a 1-bit model file (OneBit linears on a backend).

use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use onebit_core::backend::{FloatBackend, LinearBackend, ReferenceBackend};
use onebit_core::ArrayConfig;
use onebit_model::checkpoint;
use onebit_model::generate::{generate as generate_tokens, GenerateOptions, StopReason};
use onebit_model::perplexity::{perplexity, PplOptions};
use onebit_model::tokenizer::{read_text, TextTokenizer};
use onebit_model::Llama;
use onebit::e2e::load_average;
use std::path::PathBuf;

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
    /// A Hugging Face LlamaForCausalLM directory, a GGUF file, or a 1-bit model file.
    #[arg(long)]
    pub model: PathBuf,
    /// Where the OneBit linears run.
    #[arg(long, value_enum, default_value = "float")]
    pub backend: Backend,
    /// Array configuration of the reference and hardware backends (sim16, ecp5,
    /// ice40). The hardware backend needs that preset verilated into the build
    /// (ONEBIT_SIM_PRESETS, default sim16,ice40).
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
    /// tokenizer.json (default: inside the model directory, beside the 1-bit
    /// file, or the GGUF file's own).
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
    /// Resumable run: keep every finished chunk's loss in this file and skip
    /// the chunks it already holds when run again.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Print machine-readable JSON (with each chunk's summed loss).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text to continue (plain continuation: no chat template is applied).
    #[arg(long)]
    pub prompt: String,
    /// New tokens at most.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// 0: greedy; otherwise sample from softmax(logits / T).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = 1337)]
    pub seed: u64,
    /// tokenizer.json (default: as for `ppl`).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Keep going past the model's end-of-sequence token.
    #[arg(long)]
    pub ignore_eos: bool,
    /// When the context is full, go on from its last N tokens (a fresh
    /// cache) instead of stopping.
    #[arg(long)]
    pub slide: Option<usize>,
}

/// A decoder, and the Verilated accelerator its OneBit linears run on (for its
/// cycle counts) when the backend is `hardware`.
struct Loaded {
    model: Llama,
    hardware: Option<onebit_sim::backend::VerilatorBackend>,
}

/// Load the decoder for `--model` on `--backend`.
fn load_model(a: &ModelArgs) -> anyhow::Result<Llama> {
    Ok(load(a)?.model)
}

fn load(a: &ModelArgs) -> anyhow::Result<Loaded> {
    let dev = Device::Cpu;
    let full_precision = if a.model.is_dir() {
        Some("a full-precision Hugging Face directory")
    } else if a.model.is_file() && onebit_model::gguf::is_gguf(&a.model) {
        Some("a full-precision GGUF file")
    } else {
        None
    };
    if let Some(what) = full_precision {
        if a.backend != Backend::Float {
            bail!(
                "{}: backend `{}` runs OneBit linears and needs a 1-bit model file; this is {what} (use --backend float)",
                a.model.display(),
                a.backend.name()
            );
        }
        return Ok(Loaded { model: checkpoint::load_dense_model(&a.model, &dev)?, hardware: None });
    }
    if !a.model.exists() {
        bail!(
            "{}: no such file or directory (expected a Hugging Face model directory, a GGUF file or a 1-bit model file)",
            a.model.display()
        );
    }
    let file = checkpoint::read_onebit_file(&a.model)?;
    let eps = file.quantisation.layer_norm_eps;
    let preset = || ArrayConfig::preset(&a.preset).map_err(|e| anyhow::anyhow!("--preset: {e}"));
    let float = FloatBackend { layer_norm_eps: eps };
    let reference;
    let mut hardware = None;
    let backend: &dyn LinearBackend = match a.backend {
        Backend::Float => &float,
        Backend::Reference => {
            reference = ReferenceBackend { config: preset()?, layer_norm_eps: eps };
            &reference
        }
        Backend::Hardware => {
            preset()?;
            &*hardware.insert(onebit_sim::backend::VerilatorBackend::new(&a.preset, eps)?)
        }
    };
    let model = checkpoint::onebit_decoder(&file, &a.model, backend, &dev)?;
    Ok(Loaded { model, hardware })
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

/// `--tokenizer FILE`, or the model's own (see [`checkpoint::model_tokenizer`]).
fn load_tokenizer(given: &Option<PathBuf>, model: &std::path::Path) -> anyhow::Result<TextTokenizer> {
    Ok(match given {
        Some(p) => TextTokenizer::from_file(p)?,
        None => checkpoint::model_tokenizer(model)?,
    })
}

pub fn ppl(a: PplArgs) -> anyhow::Result<()> {
    let load_start = load_average();
    let Loaded { model, hardware } = load(&a.model)?;
    let tokenizer = load_tokenizer(&a.tokenizer, &a.model.model)?;
    let tok_path = tokenizer.path.clone();
    let text = read_text(&a.data)?;
    let ids = tokenizer.encode(&text, &a.data)?;
    let seq_len = a.seq_len.unwrap_or_else(|| model.config.max_position_embeddings.min(2048));
    let opts =
        PplOptions { seq_len, stride: a.stride, max_chunks: a.max_chunks, progress: true, state: a.state.clone() };
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
            "chunks_resumed": r.chunks_resumed,
            "chunk_nll": r.chunk_nll,
            "chunk_tokens": r.chunk_tokens,
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "load_average_start": load_start,
            "load_average_end": load_average(),
            "hardware": hardware.as_ref().map(|h| {
                let s = h.stats();
                serde_json::json!({"preset": a.model.preset, "cycles": s.cycles, "ideal_cycles": s.ideal_cycles,
                                   "layer_calls": s.layer_calls, "outputs_checked_against_reference": s.outputs_checked})
            }),
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

pub fn generate(a: GenerateArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let model = load_model(&a.model)?;
    let tokenizer = load_tokenizer(&a.tokenizer, &a.model.model)?;
    let prompt = tokenizer.encode(&a.prompt, std::path::Path::new("--prompt"))?;
    if !a.temperature.is_finite() || a.temperature < 0.0 {
        bail!("--temperature must be a finite number >= 0 (0 = greedy)");
    }
    let opts = GenerateOptions {
        max_tokens: a.max_tokens,
        temperature: a.temperature,
        seed: a.seed,
        stop_token: if a.ignore_eos { None } else { model.config.eos_token_id },
        slide: a.slide,
    };
    if opts.max_tokens == 0 {
        bail!("--max-tokens must be at least 1");
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{}", a.prompt)?;
    out.flush()?;
    // Decode everything so far and print what is new: a byte-level token can end
    // inside a character, which then waits for the token that completes it.
    let mut new_ids: Vec<u32> = Vec::new();
    let mut printed = 0usize;
    let g = generate_tokens(&model, &prompt, &opts, |t| {
        if opts.stop_token == Some(t) {
            return Ok(());
        }
        new_ids.push(t);
        let text = tokenizer.decode(&new_ids)?;
        if !text.ends_with('\u{FFFD}') && text.len() > printed {
            let _ = write!(out, "{}", &text[printed..]);
            let _ = out.flush();
            printed = text.len();
        }
        Ok(())
    })?;
    let text = tokenizer.decode(&new_ids)?;
    if text.len() > printed {
        write!(out, "{}", &text[printed..])?;
    }
    writeln!(out)?;
    let why = match g.stopped_by {
        StopReason::MaxTokens => "--max-tokens reached",
        StopReason::StopToken => "end-of-sequence token",
        StopReason::ContextFull => "context full",
    };
    eprintln!(
        "{} prompt tokens in {:.2} s, {} new tokens in {:.2} s ({:.2} tokens/s; {why}), backend {}",
        prompt.len(),
        g.prompt_seconds,
        g.tokens.len(),
        g.step_seconds,
        g.tokens.len().saturating_sub(1) as f64 / g.step_seconds.max(1e-9),
        a.model.backend.name()
    );
    Ok(())
}
