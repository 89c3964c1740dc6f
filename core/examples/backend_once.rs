//! One layer through the float and the reference backends side by side (what
//! the decoder calls per linear), for profiles of the backend overheads:
//! `perf record target/release/examples/backend_once 768 128 344 reference`.
//! Arguments: tokens M (768), K (128), N (344), which `both|float|reference`
//! (both), repetitions (200). Prints ms per call of each. `threads` instead of
//! a backend times the reference's chunked forward on 1 and on 2 threads in
//! alternating rounds (for the threading threshold in reference.rs).
use ndarray::Array2;
use onebit_core::backend::{FloatBackend, LinearBackend, ReferenceBackend};
use onebit_core::config::ArrayConfig;
use onebit_core::synth::{random_layer, SplitMix64};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (m, k, n) = (arg(1, 768), arg(2, 128), arg(3, 344));
    let which = args.get(4).map(String::as_str).unwrap_or("both");
    let reps = arg(5, 200);
    let mut rng = SplitMix64(1);
    let layer = random_layer(&mut rng, k, n);
    let x = Array2::from_shape_fn((m, k), |_| rng.symmetric());
    let float = FloatBackend { layer_norm_eps: 1e-5 }.prepare(&layer).unwrap();
    let reference = ReferenceBackend { config: ArrayConfig::SIM16, layer_norm_eps: 1e-5 }.prepare(&layer).unwrap();
    if which == "threads" {
        let cfg = ArrayConfig::SIM16;
        let p = onebit_core::reference::PreparedLayer::new(&cfg, layer.quantize(&cfg).unwrap()).unwrap();
        let mut best = [f64::INFINITY; 2];
        for _round in 0..10 {
            for (i, threads) in [1, 2].into_iter().enumerate() {
                let t = std::time::Instant::now();
                for _ in 0..reps.div_ceil(10) {
                    std::hint::black_box(p.forward_tiled(x.view(), Some(1e-5), 64, threads).unwrap());
                }
                best[i] = best[i].min(t.elapsed().as_secs_f64() * 1e3 / reps.div_ceil(10) as f64);
            }
        }
        println!("M {m} K {k} N {n} ({} M products): best of 10 rounds, 1 thread {:.4} ms, 2 threads {:.4} ms", m * n * k / 1_000_000, best[0], best[1]);
        return;
    }
    for (name, b) in [("float", &float), ("reference", &reference)] {
        if which != "both" && which != name {
            continue;
        }
        b.forward(x.view()).unwrap();
        let t = std::time::Instant::now();
        let mut checksum = 0u64;
        for _ in 0..reps {
            let y = b.forward(x.view()).unwrap();
            checksum = checksum.wrapping_add(y[[0, 0]].to_bits() as u64);
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / reps as f64;
        println!("{name:<9} M {m} K {k} N {n}: {ms:.4} ms per call (checksum {checksum})");
    }
}
