//! Cycle counts and utilisation of the sim16 accelerator in rust-hdl's
//! simulator for decode (M = 1) and prefill (M up to acc_depth) shapes:
//! `cargo run --release -p onebit-hdl --example utilisation`
//! Utilisation = Σ M over RUN commands / cycles: 1.0 would be a compute-bound
//! array that never waits for weights, scales or the drain.

use ndarray::Array2;
use onebit_core::synth::{random_layer, SplitMix64};
use onebit_core::ArrayConfig;
use onebit_driver::{run, Program};
use onebit_hdl::presets::sim16;

fn main() -> anyhow::Result<()> {
    let cfg = ArrayConfig::SIM16;
    println!("{cfg}");
    println!(
        "{:>5} {:>5} {:>5} {:>9} {:>9} {:>11}",
        "K", "N", "M", "cycles", "ideal", "utilisation"
    );
    for (k, n, m) in [
        (64, 32, 1),
        (64, 32, 16),
        (64, 32, 128),
        (256, 16, 128),
        (2048, 16, 128),
    ] {
        let mut rng = SplitMix64(k as u64 * 1000 + m as u64);
        let layer = random_layer(&mut rng, k, n).quantize(&cfg)?;
        let x = Array2::from_shape_fn((m, k), |_| rng.range_i64(-127, 127) as i32);
        let p = Program::compile(&cfg, &layer, x.view())?;
        let mut dev = sim16::build()?;
        let (got, stats) = run(&mut dev, &p, None, 100_000_000)?;
        let want = onebit_core::reference::integer_forward(&cfg, &layer, x.view())?;
        anyhow::ensure!(got == want, "hardware and reference differ");
        println!(
            "{k:>5} {n:>5} {m:>5} {:>9} {:>9} {:>11.3}",
            stats.cycles,
            stats.ideal_cycles,
            stats.utilisation()
        );
    }
    Ok(())
}
