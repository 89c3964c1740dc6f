//! The training loop shared by teacher training and distillation: schedule,
//! optimiser step, progress bar (loss, learning rate, tokens/s), the loss
//! curve (CSV + SVG), periodic atomic checkpoints, `--resume`, and Ctrl-C
//! (save a checkpoint, then stop).

use crate::checkpoint::{self, CheckpointMeta};
use crate::curve::{write_curve, CurveRow};
use crate::interrupt;
use crate::optim::{AdamW, CosineSchedule};
use anyhow::{bail, Result};
use candle_core::Tensor;
use std::path::PathBuf;
use std::time::Instant;

/// When a training loop evaluates, checkpoints and stops; the same for the
/// teacher and distillation runs (and their command lines).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunControl {
    /// Evaluate every this many steps (0: only at the end).
    pub eval_every: u64,
    /// Save a checkpoint every this many steps (0: only at the end or on Ctrl-C).
    pub checkpoint_every: u64,
    /// Continue from the checkpoint in the output directory.
    #[serde(skip)]
    pub resume: bool,
    /// Stop as if Ctrl-C had been pressed once this many steps are done in
    /// total (for tests and for splitting long runs).
    #[serde(skip)]
    pub stop_at: Option<u64>,
    /// Show a progress bar.
    #[serde(skip)]
    pub progress: bool,
}

/// How a loop runs.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// `teacher` or `distill` (checked on resume).
    pub kind: String,
    /// Where the checkpoint and the curve go.
    pub out_dir: PathBuf,
    /// Total optimiser updates.
    pub steps: u64,
    pub schedule: CosineSchedule,
    pub control: RunControl,
    /// Record a curve row every this many steps.
    pub log_every: u64,
    /// Curve file stem (`NAME.csv`, `NAME.svg`) and plot title.
    pub curve_name: String,
    pub curve_title: String,
    /// Settings that a resumed run must share with the checkpoint.
    pub run: serde_json::Value,
}

/// What one training step produced.
pub struct StepOutput {
    /// The scalar to minimise.
    pub loss: Tensor,
    /// KD parts, when distilling.
    pub kl: Option<Tensor>,
    pub hidden: Option<Tensor>,
    /// Tokens in the batch.
    pub tokens: u64,
}

/// What a loop did.
#[derive(Debug, Clone)]
pub struct LoopSummary {
    /// Steps completed in total (including those before a resume).
    pub steps_done: u64,
    /// Steps run by this invocation, and their wall time (evaluation excluded).
    pub steps_this_run: u64,
    pub train_seconds: f64,
    pub tokens_per_second: f64,
    pub tokens_seen: u64,
    /// Stopped early by Ctrl-C or `stop_at` (a checkpoint was saved).
    pub interrupted: bool,
    pub curve: Vec<CurveRow>,
    /// Mean training loss over the last (up to) 10 logged rows.
    pub final_train_loss: Option<f64>,
    pub last_val_loss: Option<f64>,
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?)
}

/// Run (or continue) a loop. `step_fn(step)` builds the loss of update `step`
/// (0-based); `eval_fn()` returns a validation loss, or `None` if there is no
/// validation data.
pub fn train_loop(
    s: &LoopSettings,
    opt: &mut AdamW,
    mut step_fn: impl FnMut(u64) -> Result<StepOutput>,
    mut eval_fn: impl FnMut() -> Result<Option<f64>>,
) -> Result<LoopSummary> {
    std::fs::create_dir_all(&s.out_dir).map_err(|e| anyhow::anyhow!("{}: cannot create directory: {e}", s.out_dir.display()))?;
    let mut curve: Vec<CurveRow> = Vec::new();
    let mut start = 0u64;
    let mut tokens_seen = 0u64;
    if s.control.resume {
        let meta = checkpoint::load(&s.out_dir, opt, &s.kind, &s.run)?;
        start = meta.step;
        tokens_seen = meta.tokens_seen;
        curve = meta.curve;
        eprintln!("resuming `{}` from step {start} of {}", s.kind, s.steps);
    } else if checkpoint::checkpoint_path(&s.out_dir).exists() {
        bail!(
            "{}: a checkpoint is already there; pass --resume to continue it, or choose another output directory",
            checkpoint::checkpoint_path(&s.out_dir).display()
        );
    }
    interrupt::install();
    let bar = if s.control.progress { indicatif::ProgressBar::new(s.steps) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(s.kind.clone());
    bar.set_position(start);
    let save = |opt: &AdamW, step: u64, tokens_seen: u64, curve: &[CurveRow]| -> Result<()> {
        let meta = CheckpointMeta { kind: s.kind.clone(), step, tokens_seen, run: s.run.clone(), curve: curve.to_vec() };
        checkpoint::save(&s.out_dir, opt, &meta)?;
        write_curve(&s.out_dir, &s.curve_name, &s.curve_title, curve)
    };
    let mut train_seconds = 0.0f64;
    let mut run_tokens = 0u64;
    let mut interrupted = false;
    let mut last_val = curve.iter().rev().find_map(|r| r.val_loss);
    let mut step = start;
    while step < s.steps {
        if interrupt::interrupted() || s.control.stop_at.is_some_and(|n| step >= n) {
            interrupted = true;
            break;
        }
        let t0 = Instant::now();
        let lr = s.schedule.lr(step);
        let out = step_fn(step)?;
        let loss = scalar(&out.loss)?;
        if !loss.is_finite() {
            bail!("the loss became {loss} at step {step}; the last checkpoint in {} is intact", s.out_dir.display());
        }
        let grads = out.loss.backward()?;
        opt.step(&grads, lr)?;
        drop(grads);
        train_seconds += t0.elapsed().as_secs_f64();
        run_tokens += out.tokens;
        tokens_seen += out.tokens;
        step += 1;
        let last = step == s.steps;
        let mut val = None;
        if (s.control.eval_every > 0 && step % s.control.eval_every == 0) || last {
            val = eval_fn()?;
            if val.is_some() {
                last_val = val;
            }
        }
        if step % s.log_every.max(1) == 0 || last || val.is_some() {
            curve.push(CurveRow {
                step,
                tokens: tokens_seen,
                lr,
                loss,
                kl: out.kl.as_ref().map(scalar).transpose()?,
                hidden: out.hidden.as_ref().map(scalar).transpose()?,
                val_loss: val,
            });
        }
        let tps = run_tokens as f64 / train_seconds.max(1e-9);
        let val_msg = last_val.map(|v| format!(" val {v:.4}")).unwrap_or_default();
        bar.set_message(format!("loss {loss:.4}{val_msg} lr {lr:.2e} {tps:.0} tok/s"));
        bar.set_position(step);
        if !s.control.progress && val.is_some() {
            // No bar (not a terminal): leave a line in the log at every evaluation.
            eprintln!("{} step {step}/{}: loss {loss:.4}{val_msg} lr {lr:.2e} {tps:.0} tok/s", s.kind, s.steps);
        }
        if (s.control.checkpoint_every > 0 && step % s.control.checkpoint_every == 0) || last {
            save(opt, step, tokens_seen, &curve)?;
        }
    }
    if interrupted {
        save(opt, step, tokens_seen, &curve)?;
    }
    bar.finish_and_clear();
    let tail: Vec<f64> = curve.iter().rev().take(10).map(|r| r.loss).collect();
    Ok(LoopSummary {
        steps_done: step,
        steps_this_run: step - start,
        train_seconds,
        tokens_per_second: run_tokens as f64 / train_seconds.max(1e-9),
        tokens_seen,
        interrupted,
        final_train_loss: if tail.is_empty() { None } else { Some(tail.iter().sum::<f64>() / tail.len() as f64) },
        curve,
        last_val_loss: last_val,
    })
}
