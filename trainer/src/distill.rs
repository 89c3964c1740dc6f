//! Knowledge distillation of a OneBit student from its full-precision teacher
//! (the OneBit recipe): loss = KL(teacher ‖ student) on the next-token
//! distributions + α · Σ over blocks of the hidden-state loss, AdamW
//! (β = 0.9/0.98), cosine schedule with warm-up, gradient clipping, fixed seeds.
//! All student tensors train: latent weights (through the straight-through
//! sign), g, h, and the full-precision embeddings, norms and head.

use crate::data::{random_batch, sequential_batches, split_90_10, step_rng, STREAM_TRAIN, STREAM_VAL};
use crate::loss::{cross_entropy, distill_loss};
use crate::optim::{AdamW, AdamWConfig, CosineSchedule};
use crate::runner::{train_loop, RunControl, StepOutput};
use crate::student::{read_student, write_student, copy_tokenizer, ONEBIT_LN_EPS};
use crate::teacher::{check_varmap_complete, varmap_with, write_json};
use anyhow::{bail, Result};
use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use onebit_model::tokenizer::{read_text, TextTokenizer};
use onebit_model::{LinearKind, Llama};
use serde::Serialize;
use std::path::PathBuf;

/// Everything a distillation run needs.
#[derive(Debug, Clone, Serialize)]
pub struct DistillOptions {
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
    let teacher = onebit_model::checkpoint::load_hf_dir(&o.teacher, &device)?;
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
    let tok_path = o.teacher.join("tokenizer.json");
    let tokenizer = TextTokenizer::from_file(&tok_path)?;
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
    let (varmap, params) = varmap_with(tensors, &device, o.weight_decay > 0.0)?;
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let model = Llama::from_var_builder(&config, vb, LinearKind::OneBitTraining, ONEBIT_LN_EPS)?;
    check_varmap_complete(&varmap, &params)?;
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
    let kd_on_val = |model: &Llama| -> Result<Option<(f64, f64, f64)>> {
        if val_batches.is_empty() {
            return Ok(None);
        }
        let (mut kd, mut ce_s, mut ce_t) = (0.0, 0.0, 0.0);
        for (b, t) in val_batches.iter().zip(&val_teacher) {
            let s = model.forward_with_hidden(&b.inputs)?;
            let l = distill_loss(&s.logits.detach(), &t.logits, &detach_all(&s.hidden_states), &t.hidden_states, o.alpha)?;
            kd += l.total.to_scalar::<f32>()? as f64;
            ce_s += cross_entropy(&s.logits.detach(), &b.targets)?.to_scalar::<f32>()? as f64;
            ce_t += cross_entropy(&t.logits, &b.targets)?.to_scalar::<f32>()? as f64;
        }
        let n = val_batches.len() as f64;
        Ok(Some((kd / n, ce_s / n, ce_t / n)))
    };
    let summary = train_loop(
        &settings,
        &mut opt,
        |step| {
            let b = random_batch(&train, o.batch, o.context, &mut step_rng(o.seed, STREAM_TRAIN, step), &device)?;
            let (t, s) = teacher_and_student_forward(&teacher, &model, &b.inputs, true)?;
            let l = distill_loss(&s.logits, &t.logits, &s.hidden_states, &t.hidden_states, o.alpha)?;
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
        for b in sequential_batches(&val, 32, o.context, &device)? {
            let logits = model.forward(&b.inputs)?.detach();
            sum += cross_entropy(&logits, &b.targets)?.to_scalar::<f32>()? as f64 * b.targets.elem_count() as f64;
            n += b.targets.elem_count();
        }
        report.val_student_ce_full_pass = Some(sum / n.max(1) as f64);
    }
    let tensors = opt.params.iter().map(|p| (p.name.clone(), p.var.as_tensor().clone())).collect();
    let meta = serde_json::json!({ "distilled_from": o.teacher, "initial_student": o.student, "steps": summary.steps_done, "alpha": o.alpha });
    write_student(&o.out, &tensors, &config, meta)?;
    copy_tokenizer(&o.teacher, &o.out)?;
    write_json(&o.out.join("distill.json"), &report)?;
    Ok(report)
}

fn detach_all(v: &[Tensor]) -> Vec<Tensor> {
    v.iter().map(|t| t.detach()).collect()
}
