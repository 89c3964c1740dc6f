//! Run one reference layer (default 4096×4096), for instruction counts and
//! profiles: `valgrind --tool=callgrind target/release/examples/kernel_once 64`
//! or `perf stat target/release/examples/kernel_once 64 avx2 100`.
//! Arguments: tokens (64), kernel `auto|byte|avx2|avx512` (auto), repetitions
//! (1), K (4096), N (4096). Times quantise + kernel + dequantise per call.
use ndarray::Array2;
use onebit_core::config::ArrayConfig;
use onebit_core::reference::{PreparedLayer, SignKernel};
use onebit_core::synth::{random_layer, SplitMix64};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let m: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let kernel = match args.get(2).map(String::as_str) {
        Some("byte") => SignKernel::ByteTable,
        Some("avx2") => SignKernel::NibbleAvx2,
        Some("avx512") => SignKernel::NibbleAvx512,
        _ => SignKernel::Auto,
    };
    let reps: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1);
    let k: usize = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(4096);
    let n: usize = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(4096);
    let cfg = ArrayConfig::SIM16;
    let mut rng = SplitMix64(1);
    let layer = random_layer(&mut rng, k, n).quantize(&cfg).unwrap();
    let prepared = PreparedLayer::with_kernel(&cfg, layer, kernel).unwrap();
    let x = Array2::from_shape_fn((m, k), |_| rng.symmetric());
    let t = std::time::Instant::now();
    let mut checksum = 0i64;
    for _ in 0..reps {
        let y = prepared.forward_pre_norm(x.view()).unwrap();
        checksum += y.iter().map(|v| v.to_bits() as i64).sum::<i64>();
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
    println!("{:?}: {m} tokens, {ms:.3} ms per call, checksum {checksum}", prepared.kernel());
}
