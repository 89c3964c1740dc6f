//! Full-precision teachers trained from scratch on the shipped text, saved as
//! Hugging Face `LlamaForCausalLM` directories (config.json, model.safetensors,
//! tokenizer.json).
//!
//! Recipes:
//! - `shakespeare-char`: character-level tokenizer of tinyshakespeare, nanoGPT's
//!   split (first 90% train, last 10% validation);
//! - `wikitext-bpe`: a byte-level BPE trained on wikitext-2 `valid.txt`; the
//!   model trains on `valid.txt` and is evaluated on `test.txt`.
//!
//! Defaults follow nanoGPT's `shakespeare_char` CPU configuration (4 layers,
//! 4 heads, 128 wide, context 64, batch 12, 2000 iterations, learning rate
//! 1e-3 → 1e-4 with 100 warm-up steps, AdamW β = (0.9, 0.99), weight decay 0.1
//! on matrices, gradient clipping at 1, no dropout).

use crate::data::{random_batch, sequential_batches, split_90_10, step_rng, SplitMix64, STREAM_TRAIN, STREAM_VAL};
use crate::loss::cross_entropy;
use crate::optim::{AdamW, AdamWConfig, CosineSchedule, Param};
use crate::runner::{train_loop, LoopSettings, LoopSummary, RunControl, StepOutput};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use onebit_model::tokenizer::{build_char_tokenizer, read_text, train_bpe_tokenizer, TextTokenizer};
use onebit_model::{LinearKind, Llama, LlamaConfig};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Which teacher to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    ShakespeareChar,
    WikitextBpe,
}

impl std::str::FromStr for Recipe {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "shakespeare-char" => Ok(Recipe::ShakespeareChar),
            "wikitext-bpe" => Ok(Recipe::WikitextBpe),
            _ => Err(format!("unknown recipe `{s}` (expected shakespeare-char or wikitext-bpe)")),
        }
    }
}

/// Everything a teacher run needs.
#[derive(Debug, Clone, Serialize)]
pub struct TeacherOptions {
    pub recipe: Recipe,
    /// Training text (the whole file for shakespeare-char, split 90/10).
    pub data: PathBuf,
    /// Validation text (wikitext-bpe only).
    pub val_data: Option<PathBuf>,
    pub out: PathBuf,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub context: usize,
    pub batch: usize,
    pub steps: u64,
    pub lr: f64,
    pub min_lr: f64,
    pub warmup: u64,
    pub weight_decay: f64,
    pub beta2: f64,
    pub clip: f64,
    pub bpe_vocab: usize,
    pub tie_embeddings: bool,
    pub seed: u64,
    /// Random validation batches per evaluation (nanoGPT's `eval_iters`).
    pub eval_batches: usize,
    /// Evaluation, checkpoints, resume and stopping (flattened into the reports).
    #[serde(flatten)]
    pub control: RunControl,
}

/// What a teacher run measured (written to `teacher.json`).
#[derive(Debug, Clone, Serialize)]
pub struct TeacherReport {
    pub options: TeacherOptions,
    pub parameters: usize,
    pub vocab_size: usize,
    pub train_tokens: usize,
    pub val_tokens: usize,
    pub steps_done: u64,
    pub interrupted: bool,
    /// nanoGPT's estimate: mean loss over `eval_batches` random validation batches.
    pub val_loss_nanogpt_estimate: Option<f64>,
    /// Mean loss over every disjoint context-long window of the validation split.
    pub val_loss_full_pass: Option<f64>,
    pub final_train_loss: Option<f64>,
    pub train_seconds: f64,
    pub tokens_per_second: f64,
    pub threads: usize,
}

/// Deterministic initialisation (candle's own random init is not seeded):
/// normal(0, 0.02) for embeddings and matrices, GPT-2/nanoGPT's
/// 0.02/√(2·layers) for the projections that write into the residual stream
/// (o_proj, down_proj), ones for norms.
pub fn init_tensors(config: &LlamaConfig, seed: u64) -> Result<Vec<(String, Tensor)>> {
    let mut rng = SplitMix64::new(seed);
    let residual_std = 0.02 / (2.0 * config.num_hidden_layers as f64).sqrt();
    let mut out = Vec::new();
    for (name, shape) in config.hf_tensor_shapes() {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = if shape.len() == 1 {
            vec![1.0; n]
        } else {
            let std = if name.ends_with("o_proj.weight") || name.ends_with("down_proj.weight") { residual_std } else { 0.02 };
            (0..n)
                .map(|_| {
                    // Box–Muller.
                    let u1 = rng.unit_f64().max(1e-300);
                    let u2 = rng.unit_f64();
                    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos() * std) as f32
                })
                .collect()
        };
        out.push((name, Tensor::from_vec(data, shape, &Device::Cpu)?));
    }
    Ok(out)
}

/// A `VarMap` pre-filled with `tensors` (so `Llama::from_var_builder` picks them
/// up instead of drawing its own) and the parameters for the optimiser.
pub fn varmap_with(tensors: Vec<(String, Tensor)>, device: &Device, decay_matrices: bool) -> Result<(VarMap, Vec<Param>)> {
    let varmap = VarMap::new();
    let mut params = Vec::new();
    {
        let mut data = varmap.data().lock().expect("fresh VarMap");
        for (name, t) in tensors {
            let var = Var::from_tensor(&t.to_device(device)?.to_dtype(DType::F32)?)?;
            params.push(Param { name: name.clone(), decay: decay_matrices && t.rank() >= 2, var: var.clone() });
            data.insert(name, var);
        }
    }
    params.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((varmap, params))
}

/// Make sure every variable the decoder asked for was pre-filled (a new one
/// would have come from candle's unseeded initialiser).
pub fn check_varmap_complete(varmap: &VarMap, params: &[Param]) -> Result<()> {
    let data = varmap.data().lock().expect("VarMap lock");
    if data.len() != params.len() {
        let mut extra: Vec<&String> = data.keys().filter(|k| !params.iter().any(|p| &p.name == *k)).collect();
        extra.sort();
        bail!("the decoder created variables with no initial value: {extra:?}");
    }
    Ok(())
}

/// Mean cross-entropy over batches (no gradient kept).
fn mean_loss(model: &Llama, batches: &[crate::data::Batch]) -> Result<f64> {
    let mut sum = 0.0;
    let mut n = 0usize;
    for b in batches {
        let logits = model.forward(&b.inputs)?.detach();
        let tokens = b.targets.elem_count();
        sum += cross_entropy(&logits, &b.targets)?.to_scalar::<f32>()? as f64 * tokens as f64;
        n += tokens;
    }
    Ok(sum / n.max(1) as f64)
}

/// Train (or resume) a teacher and save it as a Hugging Face directory.
pub fn train_teacher(o: &TeacherOptions) -> Result<TeacherReport> {
    let device = crate::default_device()?;
    let text = read_text(&o.data)?;
    let mut tokenizer: TextTokenizer = match o.recipe {
        Recipe::ShakespeareChar => build_char_tokenizer(&text)?,
        Recipe::WikitextBpe => train_bpe_tokenizer(&[o.data.clone()], o.bpe_vocab)?,
    };
    let (train, val) = match o.recipe {
        Recipe::ShakespeareChar => split_90_10(&tokenizer.encode(&text, &o.data)?),
        Recipe::WikitextBpe => {
            let val = match &o.val_data {
                Some(p) => tokenizer.encode(&read_text(p)?, p)?,
                None => Vec::new(),
            };
            (tokenizer.encode(&text, &o.data)?, val)
        }
    };
    if train.len() < o.context + 1 {
        bail!("{}: only {} training tokens, fewer than context + 1 = {}", o.data.display(), train.len(), o.context + 1);
    }
    if o.hidden % o.heads != 0 || o.heads % o.kv_heads != 0 {
        bail!("hidden ({}) must be a multiple of heads ({}), and heads of kv-heads ({})", o.hidden, o.heads, o.kv_heads);
    }
    let mut config = LlamaConfig::tiny(tokenizer.vocab_size(), o.hidden, o.layers, o.heads, o.kv_heads);
    config.intermediate_size = o.intermediate;
    config.max_position_embeddings = o.context;
    config.tie_word_embeddings = o.tie_embeddings;
    let (varmap, params) = varmap_with(init_tensors(&config, o.seed)?, &device, true)?;
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let model = Llama::from_var_builder(&config, vb, LinearKind::Dense, onebit_core::numerics::LAYER_NORM_EPS)?;
    check_varmap_complete(&varmap, &params)?;
    let parameters: usize = params.iter().map(|p| p.var.elem_count()).sum();
    let mut opt = AdamW::new(params, AdamWConfig { beta1: 0.9, beta2: o.beta2, eps: 1e-8, weight_decay: o.weight_decay, clip_norm: o.clip });
    let schedule = CosineSchedule { max_lr: o.lr, min_lr: o.min_lr, warmup_steps: o.warmup, total_steps: o.steps };
    let run = serde_json::to_value(o)?;
    let settings = LoopSettings {
        kind: "teacher".into(),
        out_dir: o.out.clone(),
        steps: o.steps,
        schedule,
        control: o.control.clone(),
        log_every: 10.min(o.steps.max(1)),
        curve_name: "teacher_loss".into(),
        curve_title: format!("teacher ({:?}) cross-entropy", o.recipe),
        run,
    };
    // The same validation batches at every evaluation (nanoGPT draws fresh ones;
    // fixed ones make the curve comparable point to point).
    let val_batches: Vec<crate::data::Batch> = if val.len() > o.context {
        let mut rng = step_rng(o.seed, STREAM_VAL, 0);
        (0..o.eval_batches).map(|_| random_batch(&val, o.batch, o.context, &mut rng, &device)).collect::<candle_core::Result<_>>()?
    } else {
        Vec::new()
    };
    let summary: LoopSummary = train_loop(
        &settings,
        &mut opt,
        |step| {
            let b = random_batch(&train, o.batch, o.context, &mut step_rng(o.seed, STREAM_TRAIN, step), &device)?;
            let logits = model.forward(&b.inputs)?;
            Ok(StepOutput { loss: cross_entropy(&logits, &b.targets)?, kl: None, hidden: None, tokens: b.targets.elem_count() as u64 })
        },
        || if val_batches.is_empty() { Ok(None) } else { mean_loss(&model, &val_batches).map(Some) },
    )?;
    let mut report = TeacherReport {
        options: o.clone(),
        parameters,
        vocab_size: config.vocab_size,
        train_tokens: train.len(),
        val_tokens: val.len(),
        steps_done: summary.steps_done,
        interrupted: summary.interrupted,
        val_loss_nanogpt_estimate: summary.last_val_loss,
        val_loss_full_pass: None,
        final_train_loss: summary.final_train_loss,
        train_seconds: summary.train_seconds,
        tokens_per_second: summary.tokens_per_second,
        threads: candle_core::utils::get_num_threads(),
    };
    if summary.interrupted {
        return Ok(report);
    }
    if val.len() > o.context {
        report.val_loss_full_pass = Some(mean_loss(&model, &sequential_batches(&val, 32, o.context, &device)?)?);
    }
    let tensors: Vec<(String, Tensor)> = opt.params.iter().map(|p| (p.name.clone(), p.var.as_tensor().clone())).collect();
    onebit_model::checkpoint::save_hf_dir(&o.out, &config, &tensors)?;
    tokenizer.save(&o.out.join("tokenizer.json"))?;
    write_json(&o.out.join("teacher.json"), &report)?;
    Ok(report)
}

/// Write pretty JSON atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create directory", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value)? + "\n";
    onebit_core::format::write_atomically(path, text.as_bytes()).with_context(|| format!("{}: cannot write", path.display()))
}
