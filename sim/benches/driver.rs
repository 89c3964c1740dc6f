//! Cycles of whole layers on the Verilated accelerator through the driver,
//! against the array's two bounds, for the shapes of a SmolLM2-style decoder.
//! Writes bench-results/driver.json (with the table measured on the first
//! accelerator, bench-results/driver-before.json, beside it) and a plot,
//! bench-results/driver.svg. Run:
//! `ONEBIT_SIM_PRESETS=sim16,ecp5 cargo bench --profile dev -p onebit-sim --bench driver -- --bench`.

use onebit_core::ArrayConfig;
use onebit_driver::{run_layer, Deadline, PortDevice, Program};
use onebit_sim::suite::{make_layer, Fill};
use onebit_sim::{DeviceOptions, VerilatorDevice};
use plotters::prelude::*;
use serde_json::Value;

const SHAPES: [(usize, usize); 7] = [(128, 128), (128, 344), (344, 128), (576, 576), (576, 1536), (1536, 576), (576, 192)];
const TOKENS: [usize; 3] = [1, 16, 256];

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

fn measure(full: bool) -> Vec<Value> {
    let presets: Vec<&str> = ["sim16", "ecp5"].into_iter().filter(|p| onebit_sim::BUILT_PRESETS.contains(p)).collect();
    let mut rows = vec![];
    for preset in &presets {
        let cfg = ArrayConfig::preset(preset).unwrap();
        let mut dev = PortDevice::new(VerilatorDevice::new(preset, &DeviceOptions::default()).unwrap(), cfg);
        for &(k, n) in if full { &SHAPES[..] } else { &SHAPES[..1] } {
            for &m in if full { &TOKENS[..] } else { &TOKENS[..1] } {
                let mut rng = onebit_core::synth::SplitMix64((k * 7919 + n * 31 + m) as u64);
                let (layer, xq) = make_layer(&cfg, &mut rng, k, n, m, Fill::Random, Fill::Random, Fill::Random, Fill::Random);
                let program = Program::compile(&cfg, &layer, xq.view()).unwrap();
                let want = onebit_core::reference::integer_forward(&cfg, &layer, xq.view()).unwrap();
                let t = std::time::Instant::now();
                let run = run_layer(&mut dev, &program, &format!("{k}x{n}"), Deadline::for_config(&cfg)).unwrap();
                let secs = t.elapsed().as_secs_f64();
                assert_eq!(run.output, want, "{preset} K={k} N={n} M={m}: hardware differs from the reference");
                let (compute, weights) = (program.compute_bound(), program.weight_stream_bound());
                let cycles = run.progress.cycles;
                let u = program.binding_bound() as f64 / cycles as f64;
                println!(
                    "{preset:>6} K={k:>5} N={n:>5} M={m:>4}: {cycles:>9} cycles, compute bound {compute:>8}, weight-stream bound {weights:>7}, utilisation {u:.3} ({secs:.1} s)"
                );
                rows.push(serde_json::json!({
                    "preset": preset, "k": k, "n": n, "m": m, "cycles": cycles,
                    "compute_bound": compute, "weight_stream_bound": weights,
                    "binding": if compute >= weights { "compute" } else { "weight_stream" },
                    "utilisation": u, "seconds": secs,
                }));
            }
        }
    }
    rows
}

/// The utilisation of the rows of one (preset, m), in SHAPES order.
fn series(rows: &[Value], preset: &str, m: usize) -> Vec<f64> {
    SHAPES
        .iter()
        .filter_map(|&(k, n)| {
            rows.iter()
                .find(|r| r["preset"] == preset && r["k"] == k && r["n"] == n && r["m"] == m)
                .and_then(|r| r["utilisation"].as_f64())
        })
        .collect()
}

fn plot(rows: &[Value], before: &[Value], path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1100, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, 2));
    for (panel, preset) in panels.iter().zip(["sim16", "ecp5"]) {
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{preset}: utilisation of the binding bound"), ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(60)
            .y_label_area_size(45)
            .build_cartesian_2d(-0.5f64..(SHAPES.len() as f64 - 0.5), 0f64..1.05)?;
        chart
            .configure_mesh()
            .x_labels(SHAPES.len())
            .x_label_formatter(&|x| {
                let i = x.round() as usize;
                SHAPES.get(i).map_or(String::new(), |(k, n)| format!("{k}x{n}"))
            })
            .y_desc("bound / cycles")
            .draw()?;
        for (mi, &m) in TOKENS.iter().enumerate() {
            let color = Palette99::pick(mi).to_rgba();
            for (data, dashed, label) in [(rows, false, "v2"), (before, true, "v1")] {
                let pts: Vec<(f64, f64)> = series(data, preset, m).into_iter().enumerate().map(|(i, u)| (i as f64, u)).collect();
                if pts.is_empty() {
                    continue;
                }
                let style = if dashed { color.mix(0.45).stroke_width(1) } else { color.stroke_width(3) };
                chart
                    .draw_series(LineSeries::new(pts.clone(), style))?
                    .label(format!("{label} M={m}"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
        }
        chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    }
    root.present()?;
    Ok(())
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let load_before = load_average();
    let rows = measure(full);
    if !full {
        println!("(smoke run; `ONEBIT_SIM_PRESETS=sim16,ecp5 cargo bench --profile dev -p onebit-sim --bench driver -- --bench` measures and writes JSON)");
        return;
    }
    let results = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench-results");
    let before: Value = std::fs::read_to_string(results.join("driver-before.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null);
    let before_rows = before["rows"].as_array().cloned().unwrap_or_default();
    let mut misses = vec![];
    for r in &rows {
        let (m, k, u) = (r["m"].as_u64().unwrap(), r["k"].as_u64().unwrap(), r["utilisation"].as_f64().unwrap());
        let target = match m {
            1 => Some(0.90),
            256 if k >= 576 => Some(0.95),
            256 => Some(0.90),
            _ => None,
        };
        if let Some(t) = target.filter(|&t| u < t) {
            misses.push(format!("{} K={} N={} M={m}: {u:.3} < {t}", r["preset"], r["k"], r["n"]));
        }
    }
    let json = serde_json::json!({
        // Cycle counts do not depend on the profile; record the one that ran.
        "command": if cfg!(debug_assertions) {
            "ONEBIT_SIM_PRESETS=sim16,ecp5 cargo bench --profile dev -p onebit-sim --bench driver -- --bench"
        } else {
            "ONEBIT_SIM_PRESETS=sim16,ecp5 cargo bench -p onebit-sim --bench driver"
        },
        "what": "one random layer per row through the driver (run_layer) on the Verilated accelerator, no stalls; cycles from the first command to the last output beat; every output checked against the reference",
        "utilisation": "binding bound / cycles; compute bound = ceil(K/R)·ceil(N/C)·M, weight-stream bound = K·N / weight_beat_bits, binding = the larger",
        "targets": "M = 1: >= 0.90; M = 256: >= 0.95 for K >= 576, >= 0.90 otherwise",
        "targets_missed": misses,
        "load_average": {"before": load_before, "after": load_average()},
        "rows": rows,
        "before": before,
        "plot": "bench-results/driver.svg",
    });
    onebit_core::format::write_atomically(&results.join("driver.json"), (serde_json::to_string_pretty(&json).unwrap() + "\n").as_bytes()).unwrap();
    plot(&rows, &before_rows, &results.join("driver.svg")).unwrap();
    println!("wrote {} and driver.svg; targets missed: {}", results.join("driver.json").display(), if misses.is_empty() { "none".into() } else { misses.join("; ") });
}
