//! `onebit train-teacher`, `svid`, `distill`, `export`: the trainer's command
//! line (the work is in the `onebit-trainer` crate; see docs/trainer.md).

use anyhow::{bail, Result};
use onebit_core::format::FloatDtype;
use onebit_trainer::distill::{DistillOptions, DistillRecipe, OFFICIAL_KD_LOSS_SCALE};
use onebit_trainer::svid::SvidMethod;
use onebit_trainer::teacher::{Recipe, TeacherOptions};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Evaluation, checkpoint and stopping flags shared by `train-teacher` and `distill`.
#[derive(clap::Args, Debug)]
pub struct RunControlArgs {
    #[arg(long, default_value_t = 250)]
    pub eval_every: u64,
    #[arg(long, default_value_t = 250)]
    pub checkpoint_every: u64,
    /// Continue from the checkpoint in --out.
    #[arg(long)]
    pub resume: bool,
    /// Stop (saving a checkpoint, as on Ctrl-C) once this many steps are done.
    #[arg(long)]
    pub stop_at: Option<u64>,
}

impl RunControlArgs {
    fn into_control(self) -> onebit_trainer::runner::RunControl {
        onebit_trainer::runner::RunControl {
            eval_every: self.eval_every,
            checkpoint_every: self.checkpoint_every,
            resume: self.resume,
            stop_at: self.stop_at,
            progress: progress(),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct TrainTeacherArgs {
    /// shakespeare-char (char-level, nanoGPT's 90/10 split) or wikitext-bpe (byte-level BPE on wikitext-2 valid, evaluated on test).
    #[arg(long, default_value = "shakespeare-char")]
    pub recipe: Recipe,
    /// Output directory (Hugging Face format: config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Training text [default: the recipe's file under ../shared/data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Validation text (wikitext-bpe) [default: ../shared/data/wikitext-2/test.txt].
    #[arg(long)]
    pub val_data: Option<PathBuf>,
    #[arg(long, default_value_t = 4)]
    pub layers: usize,
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    /// Key/value heads [default: --heads].
    #[arg(long)]
    pub kv_heads: Option<usize>,
    #[arg(long, default_value_t = 128)]
    pub hidden: usize,
    /// SwiGLU width [default: 8/3 of --hidden, rounded up to a multiple of 32].
    #[arg(long)]
    pub intermediate: Option<usize>,
    #[arg(long, default_value_t = 64)]
    pub context: usize,
    #[arg(long, default_value_t = 12)]
    pub batch: usize,
    #[arg(long, default_value_t = 2000)]
    pub steps: u64,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 1e-4)]
    pub min_lr: f64,
    #[arg(long, default_value_t = 100)]
    pub warmup: u64,
    #[arg(long, default_value_t = 0.1)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 0.99)]
    pub beta2: f64,
    /// Clip the global gradient norm (0: off).
    #[arg(long, default_value_t = 1.0)]
    pub clip: f64,
    /// BPE vocabulary size (wikitext-bpe).
    #[arg(long, default_value_t = 4096)]
    pub bpe_vocab: usize,
    /// Separate LM head instead of one tied to the embeddings.
    #[arg(long)]
    pub untied: bool,
    #[arg(long, default_value_t = 1337)]
    pub seed: u64,
    /// Validation batches per evaluation (nanoGPT's eval_iters).
    #[arg(long, default_value_t = 200)]
    pub eval_batches: usize,
    #[command(flatten)]
    pub control: RunControlArgs,
    /// Also write the report JSON here (e.g. bench-results/teacher.json).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct SvidArgs {
    /// Teacher: a Hugging Face LlamaForCausalLM directory or a GGUF file.
    #[arg(long)]
    pub teacher: PathBuf,
    /// Student directory to write (config.json, student.safetensors, svid.json, and
    /// tokenizer.json when the teacher has one: a teacher directory without one
    /// gives a student without one, said on stderr).
    #[arg(long)]
    pub out: PathBuf,
    /// Rank-1 factorisation of |W|: nmf (deterministic), svd (power iteration), or naive
    /// (h gᵀ = mean|W|: the baseline in SVID form, for ablations).
    #[arg(long, default_value = "nmf")]
    pub method: SvidMethod,
    /// Print the per-layer table as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct DistillArgs {
    /// project: per-token KL + every block's hidden state, everything trains.
    /// official: the OneBit code's loss (0.01 × per-sequence KL, embedding output
    /// + blocks 0..L-2), frozen embeddings and head, weight decay 0.01 on latent
    /// weights, g and h, context min(2048, max positions), lr 4e-4 → 4e-5 (docs/trainer.md).
    #[arg(long, default_value = "project")]
    pub recipe: DistillRecipe,
    /// Teacher: a Hugging Face directory with tokenizer.json, or a GGUF file.
    #[arg(long)]
    pub teacher: PathBuf,
    /// Initial student directory (from `onebit svid`).
    #[arg(long)]
    pub student: PathBuf,
    /// Training text.
    #[arg(long)]
    pub data: PathBuf,
    /// Validation text [default: --val-fraction of --data].
    #[arg(long)]
    pub val_data: Option<PathBuf>,
    /// Fraction of --data (from its end) kept for validation when --val-data is absent (0.1 = nanoGPT's split).
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
    /// Output directory: checkpoints, the loss curve, and the trained student.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 2000)]
    pub steps: u64,
    #[arg(long, default_value_t = 12)]
    pub batch: usize,
    /// Tokens per sequence [default: project 64, official min(2048, max positions)].
    #[arg(long)]
    pub context: Option<usize>,
    /// Peak learning rate [default: project 2e-3, official 4e-4].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Final learning rate [default: lr / 10].
    #[arg(long)]
    pub min_lr: Option<f64>,
    #[arg(long, default_value_t = 100)]
    pub warmup: u64,
    /// AdamW weight decay [default: project 0, official 0.01 on latent weights, g and h].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    #[arg(long, default_value_t = 1.0)]
    pub clip: f64,
    /// Weight of the hidden-state loss.
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    /// Factor on the per-sequence KL of the official recipe.
    #[arg(long, default_value_t = OFFICIAL_KD_LOSS_SCALE)]
    pub kd_loss_scale: f64,
    #[arg(long, default_value_t = 1337)]
    pub seed: u64,
    #[arg(long, default_value_t = 20)]
    pub eval_batches: usize,
    #[command(flatten)]
    pub control: RunControlArgs,
    /// Also write the report JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Student directory (from `onebit svid` or `onebit distill`).
    #[arg(long)]
    pub student: PathBuf,
    /// The 1-bit model file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Storage of g and h: f16 (as in the paper) or f32.
    #[arg(long, default_value = "f16", value_parser = parse_dtype)]
    pub value_dtype: FloatDtype,
    /// Storage of the full-precision tensors (embeddings, norms, head): f32, f16 or bf16.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub full_dtype: FloatDtype,
    #[arg(long)]
    pub json: bool,
}

fn parse_dtype(s: &str) -> Result<FloatDtype, String> {
    match s {
        "f32" => Ok(FloatDtype::F32),
        "f16" => Ok(FloatDtype::F16),
        "bf16" => Ok(FloatDtype::BF16),
        _ => Err(format!("unknown dtype `{s}` (expected f32, f16 or bf16)")),
    }
}

fn progress() -> bool {
    std::io::stderr().is_terminal()
}

fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

fn write_report(path: &Option<PathBuf>, value: &impl serde::Serialize) -> Result<()> {
    if let Some(p) = path {
        let mut v = serde_json::to_value(value)?;
        v["command"] = serde_json::json!(command_line());
        v["measured_on"] = serde_json::json!(format!("{} CPU threads available", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)));
        onebit_trainer::teacher::write_json(p, &v)?;
        eprintln!("report written to {}", p.display());
    }
    Ok(())
}

pub fn train_teacher(a: TrainTeacherArgs) -> Result<()> {
    let data_root = PathBuf::from("../shared/data");
    let (data, val_data) = match a.recipe {
        Recipe::ShakespeareChar => {
            if a.val_data.is_some() {
                bail!("--val-data is for wikitext-bpe; shakespeare-char validates on the last 10% of --data");
            }
            (a.data.unwrap_or_else(|| data_root.join("tinyshakespeare/input.txt")), None)
        }
        Recipe::WikitextBpe => (
            a.data.unwrap_or_else(|| data_root.join("wikitext-2/valid.txt")),
            Some(a.val_data.unwrap_or_else(|| data_root.join("wikitext-2/test.txt"))),
        ),
    };
    let o = TeacherOptions {
        recipe: a.recipe,
        data,
        val_data,
        out: a.out,
        layers: a.layers,
        heads: a.heads,
        kv_heads: a.kv_heads.unwrap_or(a.heads),
        hidden: a.hidden,
        intermediate: a.intermediate.unwrap_or_else(|| (a.hidden * 8 / 3).div_ceil(32) * 32),
        context: a.context,
        batch: a.batch,
        steps: a.steps,
        lr: a.lr,
        min_lr: a.min_lr,
        warmup: a.warmup,
        weight_decay: a.weight_decay,
        beta2: a.beta2,
        clip: a.clip,
        bpe_vocab: a.bpe_vocab,
        tie_embeddings: !a.untied,
        seed: a.seed,
        eval_batches: a.eval_batches,
        control: a.control.into_control(),
    };
    let r = onebit_trainer::teacher::train_teacher(&o)?;
    if r.interrupted {
        println!("stopped at step {} of {}; checkpoint saved in {}; continue with --resume", r.steps_done, o.steps, o.out.display());
        return if onebit_trainer::interrupt::interrupted() { Err(anyhow::anyhow!("interrupted")) } else { Ok(()) };
    }
    println!(
        "teacher: {} parameters, vocab {}, {} steps in {:.1} s ({:.0} tokens/s)",
        r.parameters, r.vocab_size, r.steps_done, r.train_seconds, r.tokens_per_second
    );
    let f = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into());
    println!(
        "validation loss: {} (nanoGPT estimate, {} random batches), {} (full pass); train loss {}",
        f(r.val_loss_nanogpt_estimate),
        o.eval_batches,
        f(r.val_loss_full_pass),
        f(r.final_train_loss)
    );
    println!("saved to {}", o.out.display());
    write_report(&a.report, &r)
}

pub fn svid(a: SvidArgs) -> Result<()> {
    let r = onebit_trainer::student::svid_student(&a.teacher, &a.out, a.method, progress())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("SVID ({:?}) of {} → {}", a.method, a.teacher.display(), a.out.display());
    println!("{:<40} {:>11} {:>12} {:>12} {:>6}", "linear", "N×K", "SVID error", "naive error", "iters");
    for l in &r.layers {
        println!(
            "{:<40} {:>11} {:>12.5} {:>12.5} {:>6}",
            l.name,
            format!("{}×{}", l.out_features, l.in_features),
            l.svid_error,
            l.naive_error,
            l.iterations
        );
    }
    let mean = |f: fn(&onebit_trainer::student::LayerSvid) -> f64| r.layers.iter().map(f).sum::<f64>() / r.layers.len().max(1) as f64;
    println!("{:<40} {:>11} {:>12.5} {:>12.5}", "mean", "", mean(|l| l.svid_error), mean(|l| l.naive_error));
    Ok(())
}

pub fn distill(a: DistillArgs) -> Result<()> {
    let official = a.recipe == DistillRecipe::Official;
    let context = match a.context {
        Some(c) => c,
        None if official => onebit_trainer::student::read_config(&a.student)?.max_position_embeddings.min(2048),
        None => 64,
    };
    let lr = a.lr.unwrap_or(if official { 4e-4 } else { 2e-3 });
    let o = DistillOptions {
        recipe: a.recipe,
        kd_loss_scale: a.kd_loss_scale,
        teacher: a.teacher,
        student: a.student,
        data: a.data,
        val_data: a.val_data,
        val_fraction: a.val_fraction,
        out: a.out,
        steps: a.steps,
        batch: a.batch,
        context,
        lr,
        min_lr: a.min_lr.unwrap_or(lr / 10.0),
        warmup: a.warmup,
        weight_decay: a.weight_decay.unwrap_or(if official { 0.01 } else { 0.0 }),
        clip: a.clip,
        alpha: a.alpha,
        seed: a.seed,
        eval_batches: a.eval_batches,
        control: a.control.into_control(),
    };
    if !(0.0..1.0).contains(&o.val_fraction) {
        bail!("--val-fraction must be in [0, 1)");
    }
    let r = onebit_trainer::distill::distill(&o)?;
    if r.interrupted {
        println!("stopped at step {} of {}; checkpoint saved in {}; continue with --resume", r.steps_done, o.steps, o.out.display());
        return if onebit_trainer::interrupt::interrupted() { Err(anyhow::anyhow!("interrupted")) } else { Ok(()) };
    }
    let f = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into());
    println!(
        "distilled {} steps ({} tokens in all) in {:.1} s ({:.0} tokens/s); {} parameters trained, {} frozen",
        r.steps_done, r.tokens_seen, r.train_seconds, r.tokens_per_second, r.trainable_parameters, r.frozen_parameters
    );
    println!(
        "validation: KD loss {}, student cross-entropy {} (at the start of this run {}; teacher {}), full pass {}",
        f(r.val_kd_loss),
        f(r.val_student_ce),
        f(r.val_student_ce_start),
        f(r.val_teacher_ce),
        f(r.val_student_ce_full_pass)
    );
    println!("student saved to {}", o.out.display());
    write_report(&a.report, &r)
}

pub fn export(a: ExportArgs) -> Result<()> {
    let r = onebit_trainer::export::export_student(&a.student, &a.out, a.value_dtype, a.full_dtype)?;
    let tok = a.student.join("tokenizer.json");
    if let Some(dir) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        let beside = dir.join("tokenizer.json");
        if tok.is_file() && !beside.exists() {
            let bytes = std::fs::read(&tok)?;
            onebit_core::format::write_atomically(&beside, &bytes)?;
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("wrote {} ({} bytes): {} OneBit linears", a.out.display(), r.file_bytes, r.linears);
    println!(
        "{} 1-bit weights at {:.4} bits per weight (signs + g + h); {} full-precision parameters",
        r.onebit_parameters, r.bits_per_weight, r.full_precision_parameters
    );
    println!(
        "compression: {:.2}x against the f32 teacher ({} bytes), {:.2}x against f16; linears alone {:.2}x against f16",
        r.compression_vs_f32, r.teacher_f32_bytes, r.compression_vs_f16, r.linear_compression_vs_f16
    );
    Ok(())
}
