//! Cycles of whole layers on the Verilated accelerator through the driver,
//! against the array's two bounds, for the shapes of a SmolLM2-style decoder.
//! Writes bench-results/driver.json. Run:
//! `ONEBIT_SIM_PRESETS=sim16,ecp5 cargo bench -p onebit-sim --bench driver`.

use onebit_core::ArrayConfig;
use onebit_driver::Program;
use onebit_sim::suite::{make_layer, Fill};
use onebit_sim::{DeviceOptions, VerilatorDevice};

const SHAPES: [(usize, usize); 7] = [(128, 128), (128, 344), (344, 128), (576, 576), (576, 1536), (1536, 576), (576, 192)];
const TOKENS: [usize; 3] = [1, 16, 256];

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let presets: Vec<&str> = ["sim16", "ecp5"].into_iter().filter(|p| onebit_sim::BUILT_PRESETS.contains(p)).collect();
    let load_before = load_average();
    let mut rows = vec![];
    for preset in &presets {
        let cfg = ArrayConfig::preset(preset).unwrap();
        let mut dev = VerilatorDevice::new(preset, &DeviceOptions::default()).unwrap();
        for &(k, n) in if full { &SHAPES[..] } else { &SHAPES[..1] } {
            for &m in if full { &TOKENS[..] } else { &TOKENS[..1] } {
                let mut rng = onebit_core::synth::SplitMix64((k * 7919 + n * 31 + m) as u64);
                let (layer, xq) = make_layer(&cfg, &mut rng, k, n, m, Fill::Random, Fill::Random, Fill::Random, Fill::Random);
                let program = Program::compile(&cfg, &layer, xq.view()).unwrap();
                let want = onebit_core::reference::integer_forward(&cfg, &layer, xq.view()).unwrap();
                let t = std::time::Instant::now();
                let (got, stats) = onebit_driver::run(&mut dev, &program, None, 100_000_000).unwrap();
                let secs = t.elapsed().as_secs_f64();
                assert_eq!(got, want, "{preset} K={k} N={n} M={m}: hardware differs from the reference");
                let compute = (k.div_ceil(cfg.rows) * n.div_ceil(cfg.cols) * m) as u64;
                let weights = (k * n).div_ceil(cfg.weight_beat_bits as usize) as u64;
                let binding = compute.max(weights);
                let u = binding as f64 / stats.cycles as f64;
                println!(
                    "{preset:>6} K={k:>5} N={n:>5} M={m:>4}: {:>9} cycles, compute bound {compute:>8}, weight-stream bound {weights:>7}, utilisation {u:.3} ({secs:.1} s)",
                    stats.cycles
                );
                rows.push(serde_json::json!({
                    "preset": preset, "k": k, "n": n, "m": m, "cycles": stats.cycles,
                    "compute_bound": compute, "weight_stream_bound": weights,
                    "binding": if compute >= weights { "compute" } else { "weight_stream" },
                    "utilisation": u, "seconds": secs,
                }));
            }
        }
    }
    if !full {
        println!("(smoke run; `ONEBIT_SIM_PRESETS=sim16,ecp5 cargo bench -p onebit-sim --bench driver` measures and writes JSON)");
        return;
    }
    let json = serde_json::json!({
        "command": "ONEBIT_SIM_PRESETS=sim16,ecp5 cargo bench -p onebit-sim --bench driver",
        "what": "one random layer per row through the driver on the Verilated accelerator, no stalls; cycles from the first command to the last output word; every output checked against the reference",
        "utilisation": "binding bound / cycles; compute bound = ceil(K/R)·ceil(N/C)·M, weight-stream bound = K·N / weight_beat_bits",
        "load_average": {"before": load_before, "after": load_average()},
        "rows": rows,
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-results/driver.json");
    onebit_core::format::write_atomically(&path, (serde_json::to_string_pretty(&json).unwrap() + "\n").as_bytes()).unwrap();
    println!("wrote {}", path.display());
}
