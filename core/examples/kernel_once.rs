//! Run the reference kernel once on a 4096×4096 layer (for instruction counts:
//! `valgrind --tool=callgrind target/release/examples/kernel_once 64`).
use ndarray::Array2;
use onebit_core::{config::ArrayConfig, reference::{integer_forward, quantize_activations}, synth::{random_layer, SplitMix64}};
fn main() {
    let m: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let cfg = ArrayConfig::SIM16;
    let mut rng = SplitMix64(1);
    let layer = random_layer(&mut rng, 4096, 4096).quantize(&cfg).unwrap();
    let x = Array2::from_shape_fn((m, 4096), |_| rng.symmetric());
    let xq = quantize_activations(x.view(), cfg.act_bits).unwrap();
    let t = std::time::Instant::now();
    let y = integer_forward(&cfg, &layer, xq.xq.view()).unwrap();
    println!("{} outputs, {:.3} ms, checksum {}", y.len(), t.elapsed().as_secs_f64() * 1e3, y.iter().sum::<i64>());
}
