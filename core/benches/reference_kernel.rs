//! The packed 1-bit reference kernel against an f32 GEMV/GEMM through ndarray
//! on a 4096×4096 layer, with 1 and 64 tokens, side by side in one run.
//! Writes bench-results/reference-kernel.json. Run: `make bench` or
//! `cargo bench -p onebit-core --bench reference_kernel`.

use ndarray::Array2;
use onebit_core::config::ArrayConfig;
use onebit_core::reference::{dequantize_outputs, integer_forward, kernel_threads, quantize_activations};
use onebit_core::synth::{random_layer, SplitMix64};
use std::time::{Duration, Instant};

const K: usize = 4096;
const N: usize = 4096;

/// Median of repeated runs, after a warm-up, for at least `budget`.
fn time_ms(budget: Duration, mut f: impl FnMut()) -> (f64, usize) {
    f();
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 5 || (start.elapsed() < budget && samples.len() < 500) {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (samples[samples.len() / 2], samples.len())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and
    // must stay quick, so it runs a tiny smoke version only.
    let full = std::env::args().any(|a| a == "--bench");
    let cfg = ArrayConfig::SIM16;
    let (k, n) = if full { (K, N) } else { (256, 256) };
    let budget = Duration::from_millis(if full { 3000 } else { 50 });
    let mut rng = SplitMix64(42);
    let layer = random_layer(&mut rng, k, n);
    let q = layer.quantize(&cfg).unwrap();
    // The f32 baseline: the same layer as a dense f32 matrix (sign·h·g folded in).
    let signs = onebit_core::unpack_signs(&layer.signs, n, k);
    let w = Array2::from_shape_fn((n, k), |(o, i)| signs[o * k + i] as f32 * layer.h[o] * layer.g[i]);
    let wt = w.t().to_owned();
    let mut rows = Vec::new();
    let mut results = serde_json::Map::new();
    for m in [1usize, 64] {
        let x = Array2::from_shape_fn((m, k), |_| rng.symmetric());
        let (f32_ms, f32_n) = if m == 1 {
            let xv = x.row(0).to_owned();
            time_ms(budget, || {
                std::hint::black_box(w.dot(&xv));
            })
        } else {
            time_ms(budget, || {
                std::hint::black_box(x.dot(&wt));
            })
        };
        let xq = quantize_activations(x.view(), cfg.act_bits).unwrap();
        let (kernel_ms, kernel_n) = time_ms(budget, || {
            std::hint::black_box(integer_forward(&cfg, &q, xq.xq.view()).unwrap());
        });
        let (full_ms, _) = time_ms(budget, || {
            let xq = quantize_activations(x.view(), cfg.act_bits).unwrap();
            let out = integer_forward(&cfg, &q, xq.xq.view()).unwrap();
            std::hint::black_box(dequantize_outputs(&cfg, &q, &out, &xq.scales));
        });
        let speedup = f32_ms / full_ms;
        rows.push(format!(
            "{m:>3} tok  f32 {f32_ms:>9.3} ms ({f32_n} runs)  1-bit kernel {kernel_ms:>8.3} ms ({kernel_n} runs)  1-bit with quant+dequant {full_ms:>8.3} ms  speedup {speedup:>6.2}x"
        ));
        let tag = format!("{m}tok");
        results.insert(format!("speedup_vs_f32_{tag}"), speedup.into());
        results.insert(format!("kernel_only_speedup_vs_f32_{tag}"), (f32_ms / kernel_ms).into());
        results.insert(format!("f32_ms_{tag}"), f32_ms.into());
        results.insert(format!("onebit_kernel_ms_{tag}"), kernel_ms.into());
        results.insert(format!("onebit_with_quantisation_ms_{tag}"), full_ms.into());
        results.insert(format!("onebit_gops_{tag}"), (2.0 * (m * k * n) as f64 / full_ms / 1e6).into());
    }
    println!("reference kernel, {k}x{n} layer, {} threads (ONEBIT_THREADS / MATMUL_NUM_THREADS)", kernel_threads());
    for r in &rows {
        println!("{r}");
    }
    if !full {
        println!("(smoke run; `cargo bench -p onebit-core --bench reference_kernel` measures the 4096x4096 case and writes JSON)");
        return;
    }
    results.insert("k".into(), k.into());
    results.insert("n".into(), n.into());
    results.insert("config".into(), "sim16".into());
    results.insert("threads".into(), kernel_threads().into());
    results.insert("targets".into(), serde_json::json!({"speedup_vs_f32_1tok": 8.0, "speedup_vs_f32_64tok": 2.0}));
    results.insert(
        "machine".into(),
        serde_json::json!({
            "cpu": cpu_model(),
            "cores": std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1),
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
        }),
    );
    results.insert("baseline".into(), "ndarray 0.17 f32: Array2·Array1 (1 token), Array2·Array2 via matrixmultiply with threading (64 tokens)".into());
    results.insert("measured".into(), "median wall time; the 1-bit time includes per-token activation quantisation and dequantisation".into());
    results.insert("command".into(), "cargo bench -p onebit-core --bench reference_kernel".into());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-results/reference-kernel.json");
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(results)).unwrap() + "\n";
    onebit_core::format::write_atomically(&path, text.as_bytes()).expect("write bench-results/reference-kernel.json");
    println!("wrote {}", path.display());
}
