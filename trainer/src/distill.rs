//! Knowledge distillation of a OneBit student from its full-precision teacher:
//! KL(teacher ‖ student) on the next-token distributions + α · Σ over layers of
//! the hidden-state loss, AdamW (β = 0.9/0.98), cosine schedule with warm-up,
//! gradient clipping, fixed seeds. Two recipes ([`DistillRecipe`]):
//!
//! - `project` (this project's small-model setting): KL averaged over tokens,
//!   hidden states = every block's output, every student tensor trains
//!   (latent weights, g, h, embeddings, norms, head).
//! - `official` (xuyuzhuang11/OneBit): KL summed over each sequence and averaged
//!   over sequences (`kl_div(..., 'batchmean')` on 3-D logits) times
//!   `kd_loss_scale` (0.01); hidden states = the embedding output and blocks
//!   0..L−2; embeddings and LM head frozen; weight decay on latent weights, g
//!   and h only (not on the norms).

use crate::data::{random_batch, sequential_batches, split_90_10, step_rng, STREAM_TRAIN, STREAM_VAL};
use crate::loss::{cross_entropy, distill_loss, distill_loss_official, DistillLoss};
use crate::optim::{AdamW, AdamWConfig, CosineSchedule};
use crate::runner::{train_loop, RunControl, StepOutput};
use crate::student::{read_student, write_student, copy_tokenizer, ONEBIT_LN_EPS};
use crate::teacher::{check_varmap_complete, varmap_with, write_json};
use anyhow::{bail, Result};
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use onebit_model::tokenizer::read_text;
use onebit_model::{LinearKind, Llama};
use serde::Serialize;
use std::path::PathBuf;

/// Which distillation loss and trainable set (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DistillRecipe {
    Project,
    Official,
}

impl std::str::FromStr for DistillRecipe {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "project" => Ok(DistillRecipe::Project),
            "official" => Ok(DistillRecipe::Official),
            _ => Err(format!("unknown distillation recipe `{s}` (expected project or official)")),
        }
    }
}

/// The scale of the official code's KL term (scripts/llama_7b.sh `kd_loss_scale`).
pub const OFFICIAL_KD_LOSS_SCALE: f64 = 0.01;

/// Everything a distillation run needs.
#[derive(Debug, Clone, Serialize)]
pub struct DistillOptions {
    pub recipe: DistillRecipe,
    /// Factor on the per-sequence KL (official recipe only).
    pub kd_loss_scale: f64,
    /// A Hugging Face directory or a GGUF file.
    pub teacher: PathBuf,
    pub student: PathBuf,
    pub data: PathBuf,
    /// Validation text; without it, `val_fraction` of `data` (taken from its end) validates.
    pub val_data: Option<PathBuf>,
    /// 0.1 gives nanoGPT's split of `data`; 0 uses all of it for training.
    pub val_fraction: f64,
    pub out: PathBuf,
    pub steps: u64,
    pub batch: usize,
    pub context: usize,
    pub lr: f64,
    pub min_lr: f64,
    pub warmup: u64,
    pub weight_decay: f64,
    pub clip: f64,
    pub alpha: f64,
    pub seed: u64,
    pub eval_batches: usize,
    /// Evaluation, checkpoints, resume and stopping (flattened into the reports).
    #[serde(flatten)]
    pub control: RunControl,
}

/// What a distillation run measured (written to `distill.json`).
#[derive(Debug, Clone, Serialize)]
pub struct DistillReport {
    pub options: DistillOptions,
    pub train_tokens: usize,
    pub val_tokens: usize,
    pub steps_done: u64,
    pub interrupted: bool,
    pub final_train_loss: Option<f64>,
    /// Student cross-entropy on the validation batches after training.
    pub val_student_ce: Option<f64>,
    /// Teacher cross-entropy on the same batches.
    pub val_teacher_ce: Option<f64>,
    /// The KD loss on the validation batches (the loop's `val_loss`).
    pub val_kd_loss: Option<f64>,
    /// Student cross-entropy on the validation batches before this run's
    /// first step (the SVID start, for a fresh run).
    pub val_student_ce_start: Option<f64>,
    /// Tokens the student has been trained on (all runs, resumes included).
    pub tokens_seen: u64,
    /// Parameters updated by the optimiser, and those kept frozen.
    pub trainable_parameters: usize,
    pub frozen_parameters: usize,
    /// Mean student cross-entropy over every disjoint window of the validation text.
    pub val_student_ce_full_pass: Option<f64>,
    pub train_seconds: f64,
    pub tokens_per_second: f64,
}

/// The teacher's and the student's forward passes on the same batch. With
/// `concurrent` the teacher's runs on a second thread (it needs nothing from
/// the student), so a KD step uses two cores even with candle at one thread,
/// which is faster on small models than candle's own two-thread ops (see
/// docs/trainer.md, Speed). The outputs are the same either way.
pub fn teacher_and_student_forward(
    teacher: &Llama,
    student: &Llama,
    ids: &Tensor,
    concurrent: bool,
) -> Result<(onebit_model::ForwardOutput, onebit_model::ForwardOutput)> {
    if !concurrent {
        return Ok((teacher.forward_with_hidden(ids)?, student.forward_with_hidden(ids)?));
    }
    std::thread::scope(|scope| {
        let t = scope.spawn(|| teacher.forward_with_hidden(ids));
        let s = student.forward_with_hidden(ids);
        let t = t.join().map_err(|_| anyhow::anyhow!("the teacher's forward pass panicked"))?;
        Ok((t?, s?))
    })
}

/// Train (or resume) a student; the result is a student directory in `out`.
pub fn distill(o: &DistillOptions) -> Result<DistillReport> {
    let device = crate::default_device()?;
    let teacher = onebit_model::checkpoint::load_dense_model(&o.teacher, &device)?;
    let student = read_student(&o.student)?;
    if student.config != teacher.config {
        bail!(
            "{} and {}: the student's config.json does not match the teacher's (make the student from this teacher with `onebit svid`)",
            o.student.display(),
            o.teacher.display()
        );
    }
    let config = student.config.clone();
    if o.context > config.max_position_embeddings {
        bail!("--context {} exceeds the model's max_position_embeddings = {}", o.context, config.max_position_embeddings);
    }
    let tokenizer = onebit_model::checkpoint::model_tokenizer(&o.teacher)?;
    let text = read_text(&o.data)?;
    let all = tokenizer.encode(&text, &o.data)?;
    let (train, val) = match &o.val_data {
        Some(p) => (all, tokenizer.encode(&read_text(p)?, p)?),
        None if o.val_fraction > 0.0 => {
            if (o.val_fraction - 0.1).abs() < 1e-12 {
                split_90_10(&all)
            } else {
                let n = ((all.len() as f64) * (1.0 - o.val_fraction)) as usize;
                (all[..n].to_vec(), all[n..].to_vec())
            }
        }
        None => (all, Vec::new()),
    };
    if train.len() < o.context + 1 {
        bail!("{}: only {} training tokens, fewer than context + 1 = {}", o.data.display(), train.len(), o.context + 1);
    }
    let tensors: Vec<(String, Tensor)> = student.tensors.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let (varmap, mut params) = varmap_with(tensors, &device, o.weight_decay > 0.0)?;
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let mut model = Llama::from_var_builder(&config, vb, LinearKind::OneBitTraining, ONEBIT_LN_EPS)?;
    check_varmap_complete(&varmap, &params)?;
    let mut frozen: Vec<(String, Tensor)> = Vec::new();
    if o.recipe == DistillRecipe::Official {
        // Frozen: the embedding and the LM head (the same matrix when tied) are
        // detached from their variables, so no gradient is computed for them,
        // and leave the optimiser. Decay: latent weights, g and h only.
        model.embed_tokens = model.embed_tokens.detach();
        if let Some(h) = model.lm_head.take() {
            model.lm_head = Some(h.detach());
        }
        let is_frozen = |n: &str| n == "model.embed_tokens.weight" || n == "lm_head.weight";
        for p in params.iter().filter(|p| is_frozen(&p.name)) {
            frozen.push((p.name.clone(), p.var.as_tensor().detach()));
        }
        params.retain(|p| !is_frozen(&p.name));
        for p in params.iter_mut() {
            p.decay = o.weight_decay > 0.0 && is_onebit_parameter(&p.name);
        }
    }
    let trainable_parameters = params.iter().map(|p| p.var.elem_count()).sum();
    let frozen_parameters = frozen.iter().map(|(_, t)| t.elem_count()).sum();
    let mut opt = AdamW::new(params, AdamWConfig { beta1: 0.9, beta2: 0.98, eps: 1e-8, weight_decay: o.weight_decay, clip_norm: o.clip });
    let schedule = CosineSchedule { max_lr: o.lr, min_lr: o.min_lr, warmup_steps: o.warmup, total_steps: o.steps };
    let settings = crate::runner::LoopSettings {
        kind: "distill".into(),
        out_dir: o.out.clone(),
        steps: o.steps,
        schedule,
        control: o.control.clone(),
        log_every: 10.min(o.steps.max(1)),
        curve_name: "distill_loss".into(),
        curve_title: format!("OneBit distillation: KL + {} x hidden-state loss", o.alpha),
        run: serde_json::to_value(o)?,
    };
    let val_batches: Vec<crate::data::Batch> = if val.len() > o.context {
        let mut rng = step_rng(o.seed, STREAM_VAL, 0);
        (0..o.eval_batches).map(|_| random_batch(&val, o.batch, o.context, &mut rng, &device)).collect::<candle_core::Result<_>>()?
    } else {
        Vec::new()
    };
    // Teacher outputs for the fixed validation batches are computed once.
    let val_teacher: Vec<onebit_model::ForwardOutput> =
        val_batches.iter().map(|b| teacher.forward_with_hidden(&b.inputs)).collect::<Result<_, _>>()?;
    let loss = |ids: &Tensor, s: &onebit_model::ForwardOutput, t: &onebit_model::ForwardOutput, detach: bool| {
        recipe_loss(o, &teacher, &model, ids, s, t, detach)
    };
    let kd_on_val = |model: &Llama| -> Result<Option<(f64, f64, f64)>> {
        if val_batches.is_empty() {
            return Ok(None);
        }
        let (mut kd, mut ce_s, mut ce_t) = (0.0, 0.0, 0.0);
        for (b, t) in val_batches.iter().zip(&val_teacher) {
            let s = model.forward_with_hidden(&b.inputs)?;
            let l = loss(&b.inputs, &s, t, true)?;
            kd += l.total.to_scalar::<f32>()? as f64;
            ce_s += cross_entropy(&s.logits.detach(), &b.targets)?.to_scalar::<f32>()? as f64;
            ce_t += cross_entropy(&t.logits, &b.targets)?.to_scalar::<f32>()? as f64;
        }
        let n = val_batches.len() as f64;
        Ok(Some((kd / n, ce_s / n, ce_t / n)))
    };
    // Where this invocation starts (the SVID student, or the resumed checkpoint's state after loading).
    let mut val_student_ce_start = None;
    let summary = train_loop(
        &settings,
        &mut opt,
        |step| {
            if val_student_ce_start.is_none() {
                val_student_ce_start = Some(kd_on_val(&model)?.map(|(_, s, _)| s));
            }
            let b = random_batch(&train, o.batch, o.context, &mut step_rng(o.seed, STREAM_TRAIN, step), &device)?;
            let (t, s) = teacher_and_student_forward(&teacher, &model, &b.inputs, true)?;
            let l = loss(&b.inputs, &s, &t, false)?;
            Ok(StepOutput { loss: l.total, kl: Some(l.kl), hidden: Some(l.hidden), tokens: b.targets.elem_count() as u64 })
        },
        || Ok(kd_on_val(&model)?.map(|(kd, _, _)| kd)),
    )?;
    let mut report = DistillReport {
        options: o.clone(),
        train_tokens: train.len(),
        val_tokens: val.len(),
        steps_done: summary.steps_done,
        interrupted: summary.interrupted,
        final_train_loss: summary.final_train_loss,
        val_student_ce: None,
        val_teacher_ce: None,
        val_kd_loss: summary.last_val_loss,
        val_student_ce_start: val_student_ce_start.flatten(),
        tokens_seen: summary.tokens_seen,
        trainable_parameters,
        frozen_parameters,
        val_student_ce_full_pass: None,
        train_seconds: summary.train_seconds,
        tokens_per_second: summary.tokens_per_second,
    };
    if summary.interrupted {
        return Ok(report);
    }
    if let Some((_, s, t)) = kd_on_val(&model)? {
        report.val_student_ce = Some(s);
        report.val_teacher_ce = Some(t);
        let mut sum = 0.0;
        let mut n = 0usize;
        // At most 4096 tokens a batch: the logits alone are tokens × vocabulary floats
        // (32 windows of 512 over SmolLM2's 49,152 entries were 3.2 GB each copy).
        let per_batch = (4096 / o.context).clamp(1, 32);
        for b in sequential_batches(&val, per_batch, o.context, &device)? {
            let logits = model.forward(&b.inputs)?.detach();
            sum += cross_entropy(&logits, &b.targets)?.to_scalar::<f32>()? as f64 * b.targets.elem_count() as f64;
            n += b.targets.elem_count();
        }
        report.val_student_ce_full_pass = Some(sum / n.max(1) as f64);
    }
    let mut tensors: std::collections::BTreeMap<String, Tensor> =
        opt.params.iter().map(|p| (p.name.clone(), p.var.as_tensor().clone())).collect();
    tensors.extend(frozen);
    let meta = serde_json::json!({ "distilled_from": o.teacher, "initial_student": o.student, "steps": summary.steps_done, "alpha": o.alpha, "recipe": o.recipe });
    write_student(&o.out, &tensors, &config, meta)?;
    copy_tokenizer(&o.teacher, &o.out)?;
    write_json(&o.out.join("distill.json"), &report)?;
    Ok(report)
}

fn detach_all(v: &[Tensor]) -> Vec<Tensor> {
    v.iter().map(|t| t.detach()).collect()
}

/// A OneBit linear's latent weight, g or h (`model.layers.{i}.{proj}.{weight,g,h}`),
/// as opposed to norms, embeddings and head.
pub fn is_onebit_parameter(name: &str) -> bool {
    let Some(base) = name.strip_suffix(".weight").or_else(|| name.strip_suffix(".g")).or_else(|| name.strip_suffix(".h")) else {
        return false;
    };
    name.starts_with("model.layers.") && onebit_model::LINEAR_NAMES.iter().any(|p| base.ends_with(p))
}

/// The recipe's loss for one batch. `detach`: no gradient (validation).
fn recipe_loss(
    o: &DistillOptions,
    teacher: &Llama,
    student: &Llama,
    ids: &Tensor,
    s: &onebit_model::ForwardOutput,
    t: &onebit_model::ForwardOutput,
    detach: bool,
) -> Result<DistillLoss> {
    let (s_logits, s_hidden) = if detach { (s.logits.detach(), detach_all(&s.hidden_states)) } else { (s.logits.clone(), s.hidden_states.clone()) };
    Ok(match o.recipe {
        DistillRecipe::Project => distill_loss(&s_logits, &t.logits, &s_hidden, &t.hidden_states, o.alpha)?,
        DistillRecipe::Official => {
            // The official hidden set: the embedding output, then blocks 0..L−2.
            let (b, c) = ids.dims2()?;
            let h = teacher.config.hidden_size;
            let embed = |m: &Llama| -> candle_core::Result<Tensor> {
                m.embed_tokens.index_select(&ids.flatten_all()?, 0)?.reshape((b, c, h))
            };
            let l = s_hidden.len().saturating_sub(1);
            let mut sh = vec![embed(student)?];
            sh.extend(s_hidden[..l].iter().cloned());
            let mut th = vec![embed(teacher)?];
            th.extend(t.hidden_states[..l].iter().cloned());
            distill_loss_official(&s_logits, &t.logits, &sh, &th, o.alpha, o.kd_loss_scale)?
        }
    })
}
