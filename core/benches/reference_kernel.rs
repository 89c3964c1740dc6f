//! The bit-exact 1-bit reference kernel against its peers, side by side in one
//! run, on a 4096×4096 layer and on SmolLM2-135M's shapes (576×576, 576×1536,
//! 1536×576; written K×N) at 1, 16 and 64 tokens:
//! * the f32 GEMV/GEMM through ndarray (matrixmultiply, threaded),
//! * candle's f32 matmul,
//! * candle's quantized `QMatMul` with Q4_0 and Q2_K weights (what a
//!   llama.cpp-style user would pick instead; Q2_K needs K a multiple of 256),
//! * the 1-bit reference with its portable byte-table kernel (the previous
//!   default), its AVX2 nibble kernel, and `SignKernel::Auto` (the AVX-512
//!   nibble kernel where the CPU has AVX-512BW).
//!
//! Every 1-bit time includes quantising the activations and dequantising the
//! outputs (the work `--backend reference` does per layer), not the LayerNorm,
//! which is the same for every method; the layer is prepared once beforehand,
//! as a model load does. Writes bench-results/reference-kernel.json.
//! Run: `cargo bench -p onebit-core --bench reference_kernel`.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use ndarray::Array2;
use onebit_core::config::ArrayConfig;
use onebit_core::reference::{kernel_threads, PreparedLayer, SignKernel};
use onebit_core::synth::{random_layer, SplitMix64};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// Median ms per call of each method. The methods take turns in rounds (about
/// `budget` each in all, at least 5 calls each), so that the machine's speed
/// drifting during a row (seen here: ±40 % within minutes) moves every method
/// alike and the ratios hold.
fn time_ms(budget: Duration, methods: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    const ROUNDS: u32 = 5;
    let mut samples = vec![Vec::new(); methods.len()];
    for f in methods.iter_mut() {
        f(); // warm-up
    }
    for round in 0..ROUNDS {
        for (f, samples) in methods.iter_mut().zip(samples.iter_mut()) {
            let start = Instant::now();
            while (start.elapsed() < budget / ROUNDS && samples.len() < 400 * (round as usize + 1)) || samples.len() < round as usize + 1 {
                let t = Instant::now();
                f();
                samples.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(|a, b| a.partial_cmp(b).unwrap());
            s[s.len() / 2]
        })
        .collect()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

/// One shape's measurements: method → tokens → ms.
struct Shape {
    k: usize,
    n: usize,
    ms: Map<String, Value>,
}

fn measure_shape(k: usize, n: usize, tokens: &[usize], budget: Duration, rng: &mut SplitMix64) -> Shape {
    let cfg = ArrayConfig::SIM16;
    let layer = random_layer(rng, k, n);
    let q = layer.quantize(&cfg).unwrap();
    let nibble = PreparedLayer::new(&cfg, q.clone()).unwrap();
    let bytes = PreparedLayer::with_kernel(&cfg, q.clone(), SignKernel::ByteTable).unwrap();
    let avx2 = PreparedLayer::with_kernel(&cfg, q, SignKernel::NibbleAvx2).ok();
    // The same layer as a dense f32 matrix (sign·h·g folded in) for the float peers.
    let signs = onebit_core::unpack_signs(&layer.signs, n, k);
    let w = Array2::from_shape_fn((n, k), |(o, i)| signs[o * k + i] as f32 * layer.h[o] * layer.g[i]);
    let wt = w.t().to_owned();
    let dev = Device::Cpu;
    let w_candle = Tensor::from_slice(w.as_slice().unwrap(), (n, k), &dev).unwrap();
    let wt_candle = w_candle.t().unwrap().contiguous().unwrap();
    let qmm = |dtype: GgmlDType| -> Option<QMatMul> {
        let qt = QTensor::quantize(&w_candle, dtype).ok()?;
        QMatMul::from_qtensor(qt).ok()
    };
    let q4 = qmm(GgmlDType::Q4_0);
    let q2k = qmm(GgmlDType::Q2K);
    let mut ms: Map<String, Value> = Map::new();
    let mut put = |method: &str, m: usize, v: Option<f64>| {
        let e = ms.entry(method.to_string()).or_insert_with(|| Value::Object(Map::new()));
        e.as_object_mut().unwrap().insert(m.to_string(), v.map(Value::from).unwrap_or(Value::Null));
    };
    for &m in tokens {
        let x = Array2::from_shape_fn((m, k), |_| rng.symmetric());
        let x_candle = Tensor::from_slice(x.as_slice().unwrap(), (m, k), &dev).unwrap();
        let xv = x.row(0).to_owned();
        // Every method this row has, in a fixed order; absent ones are null.
        let mut names: Vec<&str> = Vec::new();
        let mut calls: Vec<Box<dyn FnMut() + '_>> = Vec::new();
        if m == 1 {
            names.push("f32_ndarray");
            calls.push(Box::new(|| {
                std::hint::black_box(w.dot(&xv));
            }));
        } else {
            names.push("f32_ndarray");
            calls.push(Box::new(|| {
                std::hint::black_box(x.dot(&wt));
            }));
        }
        names.push("f32_candle");
        calls.push(Box::new(|| {
            std::hint::black_box(x_candle.matmul(&wt_candle).unwrap());
        }));
        for (name, qm) in [("q4_0_candle", &q4), ("q2k_candle", &q2k)] {
            match qm {
                Some(qm) => {
                    names.push(name);
                    calls.push(Box::new(|| {
                        std::hint::black_box(qm.forward(&x_candle).unwrap());
                    }));
                }
                None => put(name, m, None),
            }
        }
        for (name, p) in [("onebit_byte_table", Some(&bytes)), ("onebit_avx2", avx2.as_ref()), ("onebit", Some(&nibble))] {
            match p {
                Some(p) => {
                    names.push(name);
                    calls.push(Box::new(|| {
                        std::hint::black_box(p.forward_pre_norm(x.view()).unwrap());
                    }));
                }
                None => put(name, m, None),
            }
        }
        let mut refs: Vec<&mut dyn FnMut()> = calls.iter_mut().map(|c| c.as_mut() as &mut dyn FnMut()).collect();
        let times = time_ms(budget, &mut refs);
        for (name, ms) in names.into_iter().zip(times) {
            put(name, m, Some(ms));
        }
    }
    Shape { k, n, ms }
}

/// Bytes a 1-bit layer reads per call: packed signs plus g and h in f32.
fn onebit_weight_bytes(s: &Shape) -> f64 {
    (s.n * s.k.div_ceil(8) + 4 * (s.k + s.n)) as f64
}

fn get(s: &Shape, method: &str, m: usize) -> Option<f64> {
    s.ms.get(method)?.get(m.to_string())?.as_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and
    // must stay quick, so it runs a tiny smoke version only.
    let full = std::env::args().any(|a| a == "--bench");
    let mut rng = SplitMix64(42);
    let tokens: &[usize] = if full { &[1, 16, 64] } else { &[1, 16] };
    // `--shape KxN` (repeatable) measures only those shapes and writes no JSON.
    let args: Vec<String> = std::env::args().collect();
    let picked: Vec<(usize, usize)> = args
        .windows(2)
        .filter(|w| w[0] == "--shape")
        .filter_map(|w| w[1].split_once('x').and_then(|(k, n)| Some((k.parse().ok()?, n.parse().ok()?))))
        .collect();
    let default: &[(usize, usize)] = if full { &[(4096, 4096), (576, 576), (576, 1536), (1536, 576)] } else { &[(256, 256)] };
    let shapes: &[(usize, usize)] = if picked.is_empty() { default } else { &picked };
    let budget = Duration::from_millis(if full { 1500 } else { 20 });
    let load_before = load_average();
    let results: Vec<Shape> = shapes.iter().map(|&(k, n)| measure_shape(k, n, tokens, budget, &mut rng)).collect();
    let load_after = load_average();

    let methods = ["f32_ndarray", "f32_candle", "q4_0_candle", "q2k_candle", "onebit_byte_table", "onebit_avx2", "onebit"];
    println!("reference kernel vs peers, median ms per call, {} kernel threads, load average {load_before} -> {load_after}", kernel_threads());
    println!("{:>11} {:>4}  {}", "K x N", "tok", methods.map(|m| format!("{m:>18}")).join(""));
    for s in &results {
        for &m in tokens {
            let cells: String = methods
                .iter()
                .map(|me| get(s, me, m).map(|v| format!("{v:>18.4}")).unwrap_or_else(|| format!("{:>18}", "n/a")))
                .collect();
            println!("{:>11} {m:>4}  {cells}", format!("{}x{}", s.k, s.n));
        }
    }
    if !picked.is_empty() {
        println!("(--shape given: no JSON written)");
        return;
    }
    if !full {
        println!("(smoke run; `cargo bench -p onebit-core --bench reference_kernel` measures every shape and writes JSON)");
        return;
    }

    let mut out = Map::new();
    let ratio = |s: &Shape, peer: &str, m: usize| -> Value {
        match (get(s, peer, m), get(s, "onebit", m)) {
            (Some(p), Some(o)) => (p / o).into(),
            _ => Value::Null,
        }
    };
    let mut shape_rows = Vec::new();
    for s in &results {
        let weight_bytes = onebit_weight_bytes(s);
        let mut row = Map::new();
        row.insert("k".into(), s.k.into());
        row.insert("n".into(), s.n.into());
        row.insert("ms".into(), Value::Object(s.ms.clone()));
        for &m in tokens {
            let tag = format!("{m}tok");
            row.insert(format!("speedup_vs_f32_{tag}"), ratio(s, "f32_ndarray", m));
            row.insert(format!("speedup_vs_candle_f32_{tag}"), ratio(s, "f32_candle", m));
            row.insert(format!("speedup_vs_q4_0_{tag}"), ratio(s, "q4_0_candle", m));
            row.insert(format!("speedup_vs_q2k_{tag}"), ratio(s, "q2k_candle", m));
            row.insert(format!("speedup_vs_byte_table_{tag}"), ratio(s, "onebit_byte_table", m));
            row.insert(format!("speedup_vs_avx2_nibble_{tag}"), ratio(s, "onebit_avx2", m));
            row.insert(format!("onebit_weight_gb_per_s_{tag}"), get(s, "onebit", m).map(|v| weight_bytes / v / 1e6).into());
        }
        shape_rows.push(Value::Object(row));
    }
    // The headline keys: the 4096×4096 layer.
    let big = &results[0];
    for m in [1usize, 16, 64] {
        let tag = format!("{m}tok");
        for (key, peer) in [("f32", "f32_ndarray"), ("candle_f32", "f32_candle"), ("q4_0", "q4_0_candle"), ("q2k", "q2k_candle"), ("byte_table", "onebit_byte_table")] {
            out.insert(format!("speedup_vs_{key}_{tag}"), ratio(big, peer, m));
        }
        out.insert(format!("onebit_ms_{tag}"), get(big, "onebit", m).into());
        out.insert(format!("f32_ms_{tag}"), get(big, "f32_ndarray", m).into());
        out.insert(format!("onebit_weight_gb_per_s_{tag}"), get(big, "onebit", m).map(|v| onebit_weight_bytes(big) / v / 1e6).into());
    }
    let targets = json!({
        "speedup_vs_f32_1tok": 12.0, "speedup_vs_q2k_1tok": 1.5,
        "speedup_vs_f32_64tok": 3.0, "speedup_vs_q2k_64tok": 1.0,
    });
    let missed: Vec<String> = targets
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| out.get(*k).and_then(|x| x.as_f64()).is_none_or(|x| x < v.as_f64().unwrap()))
        .map(|(k, _)| k.clone())
        .collect();
    out.insert("k".into(), 4096.into());
    out.insert("n".into(), 4096.into());
    out.insert("shapes".into(), Value::Array(shape_rows));
    out.insert("targets".into(), targets);
    out.insert("targets_missed".into(), missed.clone().into());
    out.insert("config".into(), "sim16".into());
    out.insert("onebit_kernel".into(), format!("{:?}", PreparedLayer::new(&ArrayConfig::SIM16, random_layer(&mut rng, 8, 8).quantize(&ArrayConfig::SIM16).unwrap()).unwrap().kernel()).into());
    out.insert("threads".into(), kernel_threads().into());
    out.insert("load_average_before".into(), load_before.into());
    out.insert("load_average_after".into(), load_after.into());
    out.insert(
        "machine".into(),
        json!({
            "cpu": cpu_model(),
            "cores": std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1),
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
        }),
    );
    out.insert(
        "peers".into(),
        json!({
            "f32_ndarray": "ndarray 0.17: Array2·Array1 (1 token), Array2·Array2 through matrixmultiply with threading",
            "f32_candle": "candle-core 0.11 Tensor::matmul, f32, CPU",
            "q4_0_candle": "candle-core 0.11 QMatMul, Q4_0 weights (activations quantised to Q8_0 inside)",
            "q2k_candle": "candle-core 0.11 QMatMul, Q2_K weights (K must be a multiple of 256; null where it is not)",
            "onebit_byte_table": "this crate, SignKernel::ByteTable (the previous default kernel)",
            "onebit_avx2": "this crate, SignKernel::NibbleAvx2 (what a CPU without AVX-512BW runs; null without AVX2)",
            "onebit": "this crate, SignKernel::Auto",
        }),
    );
    out.insert("measured".into(), "median wall time per call, the methods of a row taking turns in 5 rounds; 1-bit times include activation quantisation and output dequantisation; weights prepared once, outside the timing; GB/s counts the packed signs plus g and h".into());
    out.insert("command".into(), "cargo bench -p onebit-core --bench reference_kernel".into());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-results/reference-kernel.json");
    let text = serde_json::to_string_pretty(&Value::Object(out)).unwrap() + "\n";
    onebit_core::format::write_atomically(&path, text.as_bytes()).expect("write bench-results/reference-kernel.json");
    println!("targets missed: {missed:?}");
    println!("wrote {}", path.display());
}
