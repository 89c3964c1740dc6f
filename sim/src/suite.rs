//! The equivalence suite: random and corner-case layers run on a device
//! (Verilator or rust-hdl's simulator, anything with `DevicePorts`) through
//! the driver, compared bit for bit with the reference.

use ndarray::Array2;
use onebit_core::numerics::FixedVector;
use onebit_core::pack::pack_sign_values;
use onebit_core::reference::integer_forward;
use onebit_core::synth::SplitMix64;
use onebit_core::{ArrayConfig, QuantizedLayer};
use onebit_core::ports::DevicePorts;
use onebit_driver::{run_layer, Deadline, PortDevice, Program, StallPolicy};

/// One layer case: the layer, its activations, stalls, and a label.
#[derive(Debug, Clone)]
pub struct Case {
    pub label: String,
    pub layer: QuantizedLayer,
    pub xq: Array2<i32>,
    pub stall: f32,
    pub seed: u64,
}

/// What one case did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Output elements that differ from the reference.
    pub mismatches: u64,
    pub outputs: u64,
    pub cycles: u64,
    /// The layer's binding bound (compute or weight stream), in cycles.
    pub ideal_cycles: u64,
}

/// How values are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    Random,
    AllMax,
    AllMin,
    Alternating,
    Zero,
}

fn pick(rng: &mut SplitMix64, choices: &[usize]) -> usize {
    choices[rng.next_u64() as usize % choices.len()]
}

/// A dimension around the array size: 1, d−1, d, d+1, multiples, or random up to 4d+3.
fn dim(rng: &mut SplitMix64, d: usize, max: usize) -> usize {
    let v = if rng.unit() < 0.5 {
        pick(rng, &[1, d.saturating_sub(1).max(1), d, d + 1, 2 * d, 2 * d + 1, 3 * d - 1])
    } else {
        rng.range_i64(1, (4 * d + 3) as i64) as usize
    };
    v.clamp(1, max)
}

fn fill(rng: &mut SplitMix64, how: Fill, bits: u32, len: usize, symmetric: bool) -> Vec<i32> {
    let (lo, hi) = ArrayConfig::port_range(bits);
    let lo = if symmetric { lo + 1 } else { lo };
    (0..len)
        .map(|i| match how {
            Fill::Random => match rng.next_u64() % 8 {
                0 => lo,
                1 => hi,
                2 => 0,
                _ => rng.range_i64(lo, hi),
            },
            Fill::AllMax => hi,
            Fill::AllMin => lo,
            Fill::Alternating => {
                if i % 2 == 0 {
                    hi
                } else {
                    lo
                }
            }
            Fill::Zero => 0,
        } as i32)
        .collect()
}

/// A layer of the given shape with values filled as asked.
pub fn make_layer(cfg: &ArrayConfig, rng: &mut SplitMix64, k: usize, n: usize, m: usize, x: Fill, g: Fill, h: Fill, signs: Fill) -> (QuantizedLayer, Array2<i32>) {
    let sv: Vec<i8> = (0..n * k)
        .map(|i| match signs {
            Fill::AllMax | Fill::Zero => 1,
            Fill::AllMin => -1,
            Fill::Alternating => if i % 2 == 0 { 1 } else { -1 },
            Fill::Random => if rng.next_u64() & 1 == 0 { 1 } else { -1 },
        })
        .collect();
    let layer = QuantizedLayer {
        in_features: k,
        out_features: n,
        signs: pack_sign_values(&sv, n, k),
        g: FixedVector { q: fill(rng, g, cfg.g_bits, k, false), frac: 0 },
        h: FixedVector { q: fill(rng, h, cfg.h_bits, n, false), frac: 0 },
    };
    let xq = Array2::from_shape_vec((m, k), fill(rng, x, cfg.act_bits, m * k, false)).unwrap();
    (layer, xq)
}

/// A random case: shapes around the array size (K and N up to four tiles, M up
/// to 300 so runs split at acc_depth), values over the whole port ranges
/// including zero, negative and extreme g and h, random stalls.
pub fn random_case(cfg: &ArrayConfig, seed: u64, max_m: usize) -> Case {
    let mut rng = SplitMix64(seed);
    let k = dim(&mut rng, cfg.rows, cfg.max_k);
    let n = dim(&mut rng, cfg.cols, usize::MAX);
    let m = if rng.unit() < 0.4 {
        pick(&mut rng, &[1, 2, cfg.acc_depth - 1, cfg.acc_depth, cfg.acc_depth + 1]).clamp(1, max_m)
    } else {
        rng.range_i64(1, max_m as i64) as usize
    };
    let (layer, xq) = make_layer(cfg, &mut rng, k, n, m, Fill::Random, Fill::Random, Fill::Random, Fill::Random);
    let stall = [0.0, 0.0, 0.1, 0.3, 0.6][rng.next_u64() as usize % 5];
    Case { label: format!("random K={k} N={n} M={m} stall={stall}"), layer, xq, stall, seed }
}

/// The corner-case sweep: every extreme fill on shapes 1, R−1, R, R+1 (and C),
/// with and without stalls.
pub fn corner_cases(cfg: &ArrayConfig) -> Vec<Case> {
    let mut out = Vec::new();
    let mut rng = SplitMix64(0xC0FFEE);
    let fills = [Fill::AllMax, Fill::AllMin, Fill::Alternating, Fill::Zero, Fill::Random];
    let ks = [1, cfg.rows.saturating_sub(1).max(1), cfg.rows, cfg.rows + 1, 3 * cfg.rows + 1];
    let ns = [1, cfg.cols.saturating_sub(1).max(1), cfg.cols, cfg.cols + 1];
    let mut i = 0u64;
    for &k in &ks {
        for &n in &ns {
            for (fi, &x) in fills.iter().enumerate() {
                let g = fills[(fi + 1) % fills.len()];
                let h = fills[(fi + 2) % fills.len()];
                for signs in [Fill::AllMax, Fill::AllMin, Fill::Random] {
                    let m = [1, cfg.acc_depth, cfg.acc_depth + 1][i as usize % 3].min(2 * cfg.acc_depth);
                    let (layer, xq) = make_layer(cfg, &mut rng, k, n, m, x, g, h, signs);
                    let stall = if i % 2 == 0 { 0.0 } else { 0.4 };
                    out.push(Case { label: format!("corner K={k} N={n} M={m} x={x:?} g={g:?} h={h:?} signs={signs:?} stall={stall}"), layer, xq, stall, seed: i });
                    i += 1;
                }
            }
        }
    }
    out
}

/// Run one case on `dev` (with the case's random stalls) and compare with the
/// reference, element by element.
pub fn run_case<D: DevicePorts>(dev: &mut PortDevice<D>, cfg: &ArrayConfig, case: &Case) -> Result<Outcome, String> {
    let want = integer_forward(cfg, &case.layer, case.xq.view()).map_err(|e| format!("{}: reference: {e}", case.label))?;
    let program = Program::compile(cfg, &case.layer, case.xq.view()).map_err(|e| format!("{}: compile: {e}", case.label))?;
    dev.set_stalls((case.stall > 0.0).then_some(StallPolicy { seed: case.seed ^ 0x5EED, stall: case.stall }));
    let run = run_layer(dev, &program, &case.label, Deadline::for_config(cfg)).map_err(|e| e.to_string())?;
    let mismatches = run.output.iter().zip(want.iter()).filter(|(a, b)| a != b).count() as u64;
    Ok(Outcome { mismatches, outputs: want.len() as u64, cycles: run.progress.cycles, ideal_cycles: program.binding_bound() })
}

/// Totals over many cases.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub cases: u64,
    pub failed_cases: u64,
    pub mismatches: u64,
    pub outputs: u64,
    pub cycles: u64,
    pub ideal_cycles: u64,
}

impl Totals {
    pub fn add(&mut self, o: &Outcome) {
        self.cases += 1;
        self.failed_cases += (o.mismatches > 0) as u64;
        self.mismatches += o.mismatches;
        self.outputs += o.outputs;
        self.cycles += o.cycles;
        self.ideal_cycles += o.ideal_cycles;
    }
    pub fn utilisation(&self) -> f64 {
        if self.cycles == 0 {
            0.0
        } else {
            self.ideal_cycles as f64 / self.cycles as f64
        }
    }
}
