//! Speed of one knowledge-distillation step on the CPU (teacher forward,
//! student forward, KL + hidden-state loss, backward, AdamW with clipping),
//! in tokens/s, against the official recipe in PyTorch on the same model and
//! batch, measured in the same run (scripts/bench_trainer_pytorch.py, run with
//! the Python given by --python when it can import torch).
//!
//! cargo run --release -p onebit-trainer --example kd_step_bench -- \
//!   [--steps 30] [--warmup 5] [--rounds 3] [--teacher-thread] [--torch-threads N] [--python build/venv-torch/bin/python] [--out bench-results/trainer.json]
//!
//! Model: nanoGPT's shakespeare_char CPU size as a LLaMA (4 layers, 4 heads,
//! 128 wide, SwiGLU 352, vocab 65, tied embeddings), context 64, batch 12.

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use onebit_model::{LinearKind, Llama, LlamaConfig, LINEAR_NAMES};
use onebit_trainer::data::{random_batch, step_rng, STREAM_TRAIN};
use onebit_trainer::distill::teacher_and_student_forward;
use onebit_trainer::loss::distill_loss;
use onebit_trainer::optim::{AdamW, AdamWConfig};
use onebit_trainer::svid::{latent_init, svid, SvidMethod, SvidOptions};
use onebit_trainer::teacher::{init_tensors, varmap_with};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

pub const LAYERS: usize = 4;
pub const HEADS: usize = 4;
pub const HIDDEN: usize = 128;
pub const INTERMEDIATE: usize = 352;
pub const VOCAB: usize = 65;
pub const CONTEXT: usize = 64;
pub const BATCH: usize = 12;

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The 1-minute load average, to tell a quiet machine from a busy one.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let steps: usize = arg(&args, "--steps").map(|s| s.parse()).transpose()?.unwrap_or(30);
    let warmup: usize = arg(&args, "--warmup").map(|s| s.parse()).transpose()?.unwrap_or(5);
    // The teacher's forward on a second thread, as `onebit distill` runs it;
    // off, the candle side uses exactly RAYON_NUM_THREADS threads.
    let teacher_thread = args.iter().any(|a| a == "--teacher-thread");
    let rounds: usize = arg(&args, "--rounds").map(|s| s.parse()).transpose()?.unwrap_or(3).max(1);
    let python = arg(&args, "--python").unwrap_or_else(|| "build/venv-torch/bin/python".into());
    let out = arg(&args, "--out").map(PathBuf::from);
    let retained = onebit_trainer::memory::retain_freed_memory();
    let load_before = load_average();
    let threads = candle_core::utils::get_num_threads();
    let dev = Device::Cpu;

    let mut config = LlamaConfig::tiny(VOCAB, HIDDEN, LAYERS, HEADS, HEADS);
    config.intermediate_size = INTERMEDIATE;
    config.max_position_embeddings = CONTEXT;
    config.tie_word_embeddings = true;
    let teacher_tensors = init_tensors(&config, 1)?;
    let teacher = {
        let map: HashMap<String, Tensor> = teacher_tensors.iter().cloned().collect();
        let mut m = Llama::from_var_builder(&config, VarBuilder::from_tensors(map, DType::F32, &dev), LinearKind::Dense, 1e-5)?;
        m.differentiable = false;
        m
    };
    // Student by SVID of the teacher.
    let mut student_tensors = Vec::new();
    for (name, t) in &teacher_tensors {
        let base = name.strip_suffix(".weight").filter(|b| LINEAR_NAMES.iter().any(|p| b.ends_with(p)));
        match base {
            Some(base) => {
                let (n, k) = t.dims2()?;
                let w: Vec<f32> = t.flatten_all()?.to_vec1()?;
                let s = svid(&w, n, k, SvidMethod::Nmf, SvidOptions::default());
                student_tensors.push((name.clone(), Tensor::from_vec(latent_init(&w), (n, k), &dev)?));
                student_tensors.push((format!("{base}.g"), Tensor::from_vec(s.g, k, &dev)?));
                student_tensors.push((format!("{base}.h"), Tensor::from_vec(s.h, n, &dev)?));
            }
            None => student_tensors.push((name.clone(), t.clone())),
        }
    }
    let (varmap, params) = varmap_with(student_tensors, &dev, false)?;
    let student = Llama::from_var_builder(&config, VarBuilder::from_varmap(&varmap, DType::F32, &dev), LinearKind::OneBitTraining, 1e-5)?;
    let mut opt = AdamW::new(params, AdamWConfig::default());
    let tokens: Vec<u32> = (0..100_000u32).map(|i| (i.wrapping_mul(2654435761) >> 7) % VOCAB as u32).collect();
    // PyTorch gets as many threads as candle uses cores.
    let torch_threads = arg(&args, "--torch-threads").map(|s| s.parse()).transpose()?.unwrap_or(threads + teacher_thread as usize);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench_trainer_pytorch.py");
    // Rounds alternate candle and PyTorch so that a change in the machine's load
    // during the run hits both sides alike; the ratio is of the medians over all rounds.
    let mut candle_times = Vec::new();
    let mut torch_rounds: Vec<serde_json::Value> = Vec::new();
    let mut torch_failed = None;
    let mut step = 0usize;
    for round in 0..rounds {
        for i in 0..(warmup + steps) {
            let b = random_batch(&tokens, BATCH, CONTEXT, &mut step_rng(0, STREAM_TRAIN, step as u64), &dev)?;
            step += 1;
            let t0 = Instant::now();
            let (t, s) = teacher_and_student_forward(&teacher, &student, &b.inputs, teacher_thread)?;
            let l = distill_loss(&s.logits, &t.logits, &s.hidden_states, &t.hidden_states, 1.0)?;
            let grads = l.total.backward()?;
            opt.step(&grads, 1e-4)?;
            let dt = t0.elapsed().as_secs_f64();
            if i >= warmup {
                candle_times.push(dt);
            }
        }
        let m = median(&candle_times[candle_times.len() - steps..]);
        eprintln!("round {round}: candle median {:.2} ms/step ({threads} threads)", m * 1e3);
        if torch_failed.is_some() {
            continue;
        }
        let torch = std::process::Command::new(&python)
            .arg(&script)
            .args(["--steps", &steps.to_string(), "--warmup", &warmup.to_string(), "--threads", &torch_threads.to_string()])
            .output();
        match torch {
            Ok(o) if o.status.success() => {
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).context("PyTorch script output is not JSON")?;
                eprintln!("round {round}: pytorch median {:.2} ms/step", v["median_ms"].as_f64().unwrap_or(f64::NAN));
                torch_rounds.push(v);
            }
            Ok(o) => torch_failed = Some(format!("PyTorch run failed: {}", String::from_utf8_lossy(&o.stderr))),
            Err(e) => torch_failed = Some(format!("PyTorch not run ({python}: {e})")),
        }
        if let Some(why) = &torch_failed {
            eprintln!("{why}");
        }
    }
    let candle_median = median(&candle_times);
    let candle_mean = candle_times.iter().sum::<f64>() / candle_times.len() as f64;
    let candle_tps = (BATCH * CONTEXT) as f64 / candle_median;
    let torch_times: Vec<f64> = torch_rounds
        .iter()
        .flat_map(|v| v["times_ms"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_f64())
        .map(|ms| ms / 1e3)
        .collect();
    let torch_json = (!torch_times.is_empty()).then(|| {
        let m = median(&torch_times);
        json!({
            "torch_version": torch_rounds[0]["torch_version"],
            "threads": torch_rounds[0]["threads"],
            "median_ms": m * 1e3,
            "mean_ms": torch_times.iter().sum::<f64>() / torch_times.len() as f64 * 1e3,
            "tokens_per_second": (BATCH * CONTEXT) as f64 / m,
            "round_medians_ms": torch_rounds.iter().map(|v| v["median_ms"].clone()).collect::<Vec<_>>(),
        })
    });
    eprintln!("candle: median {:.2} ms/step, {:.0} tokens/s", candle_median * 1e3, candle_tps);
    let load_after = load_average();
    let ratio = torch_json.as_ref().and_then(|v| v["tokens_per_second"].as_f64()).map(|p| candle_tps / p);
    if let Some(r) = ratio {
        eprintln!("candle / pytorch tokens/s: {r:.2}");
    }
    let candle_round_medians: Vec<f64> = candle_times.chunks(steps).map(|c| median(c) * 1e3).collect();
    let report = json!({
        "command": args.join(" "),
        "what": "one KD step: teacher forward, OneBit student forward, KL + hidden-state loss, backward, AdamW with clipping",
        "model": {"layers": LAYERS, "heads": HEADS, "hidden": HIDDEN, "intermediate": INTERMEDIATE, "vocab": VOCAB, "context": CONTEXT, "batch": BATCH, "tied_embeddings": true},
        "threads": threads,
        "teacher_forward_on_second_thread": teacher_thread,
        "candle_cores_used": threads + teacher_thread as usize,
        "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
        "allocator_retains_freed_memory": retained,
        "load_average_1min": {"before": load_before, "after": load_after},
        "rounds": rounds,
        "steps_timed_per_round": steps,
        "candle": {"median_ms": candle_median * 1e3, "mean_ms": candle_mean * 1e3, "tokens_per_second": candle_tps, "round_medians_ms": candle_round_medians},
        "pytorch": torch_json,
        "pytorch_error": torch_failed,
        "candle_over_pytorch_tokens_per_second": ratio,
        "target": "candle tokens/s at least PyTorch's (ratio >= 1)",
        "target_met": ratio.map(|r| r >= 1.0),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    if let Some(p) = out {
        onebit_trainer::teacher::write_json(&p, &report)?;
    }
    Ok(())
}
