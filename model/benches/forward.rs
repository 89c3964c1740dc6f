//! Forward throughput of the decoder: full precision vs a 1-bit model on the
//! float and the bit-exact reference backends, on the shakespeare_char teacher
//! configuration (4 layers, 4 heads, 128 wide, vocabulary 65, context 64).
//! With `ONEBIT_SMOLLM2_1BIT=PATH` it also runs that 1-bit SmolLM2-135M file
//! on both backends (1 × 64 and 1 × 512 tokens). Prints a table and writes
//! bench-results/model.json.
//!
//!     cargo bench -p onebit-model --bench forward

use candle_core::{Device, Tensor};
use onebit_core::backend::{FloatBackend, ReferenceBackend};
use onebit_core::format::QuantSettings;
use onebit_core::ArrayConfig;
use onebit_model::checkpoint::{naive_onebit_from_dense, onebit_decoder, random_hf_tensors};
use onebit_model::{LinearKind, Llama, LlamaConfig};
use std::time::{Duration, Instant};

const COMMAND: &str = "cargo bench -p onebit-model --bench forward";

fn config() -> LlamaConfig {
    LlamaConfig {
        vocab_size: 65,
        hidden_size: 128,
        intermediate_size: 344,
        num_hidden_layers: 4,
        num_attention_heads: 4,
        num_key_value_heads: 4,
        head_dim: 32,
        max_position_embeddings: 256,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        tie_word_embeddings: false,
        bos_token_id: None,
        eos_token_id: None,
    }
}

/// Tokens per second of each model's `forward` on `batch` × `seq` tokens, and
/// its runs. The models take turns in rounds (at least 3 runs each in all, about
/// `budget` each), so that the machine's speed drifting during the measurement
/// (seen here: ±40 % within minutes) moves every model alike and the ratios hold.
fn measure(models: &[&Llama], batch: usize, seq: usize, budget: Duration) -> Vec<(f64, usize)> {
    const ROUNDS: u32 = 6;
    let vocab = models[0].config.vocab_size;
    let ids: Vec<u32> = (0..batch * seq).map(|i| ((i * 31 + 7) % vocab) as u32).collect();
    let input = Tensor::from_vec(ids, (batch, seq), &Device::Cpu).unwrap();
    for m in models {
        m.forward(&input).unwrap(); // warm-up
    }
    let mut spent = vec![(Duration::ZERO, 0usize); models.len()];
    for round in 0..ROUNDS {
        for (m, (time, runs)) in models.iter().zip(spent.iter_mut()) {
            let start = Instant::now();
            let mut n = 0;
            while start.elapsed() < budget / ROUNDS || (round == ROUNDS - 1 && *runs + n < 3) {
                std::hint::black_box(m.forward(&input).unwrap());
                n += 1;
            }
            *time += start.elapsed();
            *runs += n;
        }
    }
    spent.iter().map(|&(t, runs)| ((runs * batch * seq) as f64 / t.as_secs_f64(), runs)).collect()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` passes nothing and
    // gets a quick smoke run that writes no JSON.
    let full = std::env::args().any(|a| a == "--bench");
    let c = config();
    let dev = Device::Cpu;
    let vb = candle_nn::VarBuilder::from_tensors(
        random_hf_tensors(&c, 1, &dev).unwrap().into_iter().collect(),
        candle_core::DType::F32,
        &dev,
    );
    let mut dense = Llama::from_var_builder(&c, vb, LinearKind::Dense, 1e-5).unwrap();
    dense.differentiable = false;
    let file = naive_onebit_from_dense(&dense, QuantSettings::default()).unwrap();
    let eps = file.quantisation.layer_norm_eps;
    let preset = "sim16";
    let float_1bit = onebit_decoder(&file, "<bench>".as_ref(), &FloatBackend { layer_norm_eps: eps }, &dev).unwrap();
    let reference = onebit_decoder(
        &file,
        "<bench>".as_ref(),
        &ReferenceBackend { config: ArrayConfig::preset(preset).unwrap(), layer_norm_eps: eps },
        &dev,
    )
    .unwrap();

    let budget = if full { Duration::from_secs(3) } else { Duration::from_millis(1) };
    let mut rows = Vec::new();
    println!("{:<46} {:>6} {:>5} {:>14} {:>6}", "model", "batch", "seq", "tokens/s", "runs");
    for (batch, seq) in [(1, 64), (12, 64)] {
        let names = ["full precision (candle f32)", "1-bit, float backend", "1-bit, reference backend (sim16)"];
        let measured = measure(&[&dense, &float_1bit, &reference], batch, seq, budget);
        let baseline = measured[0].0;
        for (name, (tps, runs)) in names.into_iter().zip(measured) {
            println!("{name:<46} {batch:>6} {seq:>5} {tps:>14.1} {runs:>6}");
            rows.push(serde_json::json!({
                "model": name, "batch": batch, "seq_len": seq, "tokens_per_s": tps, "runs": runs,
                "ratio_to_full_precision": tps / baseline,
            }));
        }
    }
    // The 1-bit SmolLM2-135M (30 layers, 576 wide, 210 linears) when a file is
    // given: ONEBIT_SMOLLM2_1BIT=PATH (made by `scripts/smollm2.sh`).
    let smollm2 = std::env::var("ONEBIT_SMOLLM2_1BIT").ok().filter(|_| full);
    if let Some(path) = &smollm2 {
        let path = std::path::Path::new(path);
        let file = onebit_model::checkpoint::read_onebit_file(path).unwrap();
        let eps = file.quantisation.layer_norm_eps;
        let float = onebit_decoder(&file, path, &FloatBackend { layer_norm_eps: eps }, &dev).unwrap();
        let reference = onebit_decoder(
            &file,
            path,
            &ReferenceBackend { config: ArrayConfig::preset(preset).unwrap(), layer_norm_eps: eps },
            &dev,
        )
        .unwrap();
        let names = ["1-bit SmolLM2-135M, float backend", "1-bit SmolLM2-135M, reference backend (sim16)"];
        // 64 tokens, and 512 as a perplexity evaluation feeds each linear.
        for (batch, seq) in [(1, 64), (1, 512)] {
            let measured = measure(&[&float, &reference], batch, seq, budget);
            let baseline = measured[0].0;
            for (name, (tps, runs)) in names.into_iter().zip(measured) {
                println!("{name:<46} {batch:>6} {seq:>5} {tps:>14.1} {runs:>6}");
                rows.push(serde_json::json!({
                    "model": name, "batch": batch, "seq_len": seq, "tokens_per_s": tps, "runs": runs,
                    "ratio_to_float_backend": tps / baseline, "file": path.display().to_string(),
                }));
            }
        }
    }
    if !full {
        println!("(smoke run; `{COMMAND}` measures and writes bench-results/model.json)");
        return;
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let out = serde_json::json!({
        "benchmark": "decoder forward throughput",
        "command": COMMAND,
        "config": c.to_hf_json(),
        "reference_preset": preset,
        "onebit_model": "naive sign baseline of a random-initialised model (weights do not change the speed)",
        "threads": threads,
        "cpu": cpu_model(),
        "profile": "bench (release)",
        "load_average": std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default(),
        "kernel_threads": onebit_core::reference::kernel_threads(),
        "smollm2_command": smollm2.as_ref().map(|p| format!("ONEBIT_SMOLLM2_1BIT={p} {COMMAND}")),
        "smollm2_note": "speed does not depend on the weights: any 1-bit SmolLM2 file (naive sign, SVID or distilled) gives the same figures",
        "results": rows,
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-results/model.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    onebit_core::format::write_atomically(&path, serde_json::to_string_pretty(&out).unwrap().as_bytes()).unwrap();
    println!("wrote {}", path.display());
}
