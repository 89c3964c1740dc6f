//! The whole accelerator in rust-hdl's simulator, driven by the driver's
//! stream runner, against the bit-exact reference `integer_forward_naive`:
//! random layers with K and N not multiples of R and C, M = 1 and M past
//! acc_depth, random stalls on every stream.

use crate::common::*;
use onebit_core::reference::integer_forward_naive;
use onebit_core::synth::SplitMix64;
use onebit_core::ArrayConfig;
use onebit_driver::{run, DevicePorts, Program, RunStats, StallPolicy};
use proptest::prelude::*;

fn check_layer(
    cfg: &ArrayConfig,
    dev: &mut impl DevicePorts,
    seed: u64,
    k: usize,
    n: usize,
    m: usize,
    stall: f32,
) -> RunStats {
    let mut rng = SplitMix64(seed);
    let layer = random_layer(&mut rng, cfg, k, n);
    let x = random_activations(&mut rng, cfg, m, k);
    let want = integer_forward_naive(cfg, &layer, x.view()).unwrap();
    let p = Program::compile(cfg, &layer, x.view()).unwrap();
    let stalls = (stall > 0.0).then_some(StallPolicy {
        seed: seed ^ 0x5eed,
        stall,
    });
    let (got, stats) = run(dev, &p, stalls, 1_000_000).unwrap();
    assert_eq!(got, want, "{cfg}: K={k} N={n} M={m} seed={seed} stall={stall}");
    stats
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn t4x4_matches_reference(seed: u64, k in 1usize..14, n in 1usize..10, m in 1usize..10, stall in 0.0f32..0.6) {
        check_layer(&T4X4, &mut t4x4::build().unwrap(), seed, k, n, m, stall);
    }

    #[test]
    fn t4x3_matches_reference(seed: u64, k in 1usize..14, n in 1usize..8, m in 1usize..8, stall in 0.0f32..0.6) {
        check_layer(&T4X3, &mut t4x3::build().unwrap(), seed, k, n, m, stall);
    }

    #[test]
    fn t3x2_matches_reference(seed: u64, k in 1usize..11, n in 1usize..6, m in 1usize..7, stall in 0.0f32..0.6) {
        check_layer(&T3X2, &mut t3x2::build().unwrap(), seed, k, n, m, stall);
    }

    #[test]
    fn t1x1_matches_reference(seed: u64, k in 1usize..6, n in 1usize..4, m in 1usize..4, stall in 0.0f32..0.6) {
        check_layer(&T1X1, &mut t1x1::build().unwrap(), seed, k, n, m, stall);
    }
}

/// One device runs several layers back to back: nothing left over from one
/// program (accumulators, h ring, weights) leaks into the next.
#[test]
fn programs_run_back_to_back_on_one_device() {
    let mut dev = t4x3::build().unwrap();
    for (i, (k, n, m)) in [(7, 5, 6), (1, 1, 1), (9, 4, 11), (4, 3, 5)].into_iter().enumerate() {
        check_layer(
            &T4X3,
            &mut dev,
            100 + i as u64,
            k,
            n,
            m,
            if i % 2 == 0 { 0.3 } else { 0.0 },
        );
    }
}

/// Every value at its extreme: x = -2^(A-1), g = -2^(G-1), h = -2^(H-1), all
/// signs -1: lanes and outputs saturate, and the hardware must still agree.
#[test]
fn extremes_saturate_like_the_reference() {
    use onebit_core::numerics::FixedVector;
    for cfg in [T4X3, T4X4] {
        let (k, n, m) = (2 * cfg.rows + 1, cfg.cols + 1, 3);
        for (xv, gv, hv, sign) in [
            (-1i64, -1i64, -1i64, -1i8),
            (-1, 1, 1, 1),
            (1, -1, -1, -1),
            (1, 1, 1, -1),
        ] {
            let pick = |bits: u32, s: i64| {
                if s < 0 {
                    -(1i64 << (bits - 1))
                } else {
                    (1i64 << (bits - 1)) - 1
                }
            };
            let layer = onebit_core::QuantizedLayer {
                in_features: k,
                out_features: n,
                signs: onebit_core::pack::pack_sign_values(&vec![sign; n * k], n, k),
                g: FixedVector {
                    q: vec![pick(cfg.g_bits, gv) as i32; k],
                    frac: 0,
                },
                h: FixedVector {
                    q: vec![pick(cfg.h_bits, hv) as i32; n],
                    frac: 0,
                },
            };
            let x = ndarray::Array2::from_elem((m, k), pick(cfg.act_bits, xv) as i32);
            let want = integer_forward_naive(&cfg, &layer, x.view()).unwrap();
            let p = Program::compile(&cfg, &layer, x.view()).unwrap();
            let got = if cfg == T4X3 {
                run(&mut t4x3::build().unwrap(), &p, None, 100_000).unwrap().0
            } else {
                run(&mut t4x4::build().unwrap(), &p, None, 100_000).unwrap().0
            };
            assert_eq!(got, want, "{cfg}");
            let max = ArrayConfig::sym_max(cfg.out_bits);
            if cfg == T4X3 {
                assert!(
                    want.iter().all(|v| v.abs() == max),
                    "T4X3 extremes must saturate the outputs: {want}"
                );
            }
        }
    }
}

/// The sim16 preset itself (16×16, the Verilator target) on a layer with
/// K and N not multiples of 16, and M = 1.
#[test]
fn sim16_preset_matches_reference() {
    use onebit_hdl::presets::sim16;
    let cfg = ArrayConfig::SIM16;
    let mut dev = sim16::build().unwrap();
    check_layer(&cfg, &mut dev, 7, 37, 21, 3, 0.25);
    check_layer(&cfg, &mut dev, 8, 20, 17, 1, 0.0);
}

/// The iCE40 preset (8×8, 10-bit lanes, 22-bit outputs).
#[test]
fn ice40_preset_matches_reference() {
    use onebit_hdl::presets::ice40;
    let cfg = ArrayConfig::ICE40;
    check_layer(&cfg, &mut ice40::build().unwrap(), 11, 19, 11, 5, 0.3);
}

/// Records the cycle of every handshake, to measure overlap.
struct Recorder<D> {
    dev: D,
    cycle: u64,
    w_valid: bool,
    x_valid: bool,
    w_accepts: Vec<u64>,
    x_accepts: Vec<u64>,
}

impl<D: DevicePorts> DevicePorts for Recorder<D> {
    fn set_cmd(&mut self, valid: bool, data: u32) {
        self.dev.set_cmd(valid, data)
    }
    fn set_weight(&mut self, valid: bool, data: &[u32]) {
        self.w_valid = valid;
        self.dev.set_weight(valid, data)
    }
    fn set_scale(&mut self, valid: bool, data: u16) {
        self.dev.set_scale(valid, data)
    }
    fn set_activation(&mut self, valid: bool, data: &[u32]) {
        self.x_valid = valid;
        self.dev.set_activation(valid, data)
    }
    fn set_out_ready(&mut self, ready: bool) {
        self.dev.set_out_ready(ready)
    }
    fn eval(&mut self) {
        self.dev.eval()
    }
    fn cmd_ready(&self) -> bool {
        self.dev.cmd_ready()
    }
    fn weight_ready(&self) -> bool {
        self.dev.weight_ready()
    }
    fn scale_ready(&self) -> bool {
        self.dev.scale_ready()
    }
    fn activation_ready(&self) -> bool {
        self.dev.activation_ready()
    }
    fn out_valid(&self) -> bool {
        self.dev.out_valid()
    }
    fn out_data(&self) -> u64 {
        self.dev.out_data()
    }
    fn tick(&mut self) {
        if self.w_valid && self.dev.weight_ready() {
            self.w_accepts.push(self.cycle);
        }
        if self.x_valid && self.dev.activation_ready() {
            self.x_accepts.push(self.cycle);
        }
        self.dev.tick();
        self.cycle += 1;
    }
}

/// LOAD_W straight after RUN (weights before g in each K tile): the weight
/// beats must wait only until the RUN's first token has passed every PE, so
/// they load while the RUN's tokens are still in the array, and the result
/// stays exact. The overlap is counted in weight beats accepted while the
/// previous RUN's last token was still inside the array (R + C cycles after
/// it was accepted).
#[test]
fn weight_load_overlaps_the_running_tile() {
    for (cfg, m) in [(T4X4, 4usize), (T4X3, 5), (T3X2, 1)] {
        let mut rng = SplitMix64(77);
        let (k, n) = (3 * cfg.rows + 1, cfg.cols + 1);
        let layer = random_layer(&mut rng, &cfg, k, n);
        let x = random_activations(&mut rng, &cfg, m, k);
        let want = integer_forward_naive(&cfg, &layer, x.view()).unwrap();
        let mut p = Program::compile(&cfg, &layer, x.view()).unwrap();
        weights_first(&cfg, &mut p);
        let dev = match cfg {
            c if c == T4X4 => run_recorded(t4x4::build().unwrap(), &p),
            c if c == T4X3 => run_recorded(t4x3::build().unwrap(), &p),
            _ => run_recorded(t3x2::build().unwrap(), &p),
        };
        let (got, stats, w_acc, x_acc) = dev;
        assert_eq!(got, want, "{cfg}");
        // Weight beats accepted while the previous RUN's tokens were in flight.
        let in_flight = (cfg.rows + cfg.cols) as u64;
        let overlapped = w_acc
            .iter()
            .filter(|&&t| x_acc.iter().any(|&xt| xt < t && t <= xt + in_flight))
            .count();
        println!(
            "{}x{} M={m}: {} cycles, {} ideal, utilisation {:.3}; {overlapped} of {} weight beats overlapped a running tile",
            cfg.rows,
            cfg.cols,
            stats.cycles,
            stats.ideal_cycles,
            stats.utilisation(),
            w_acc.len()
        );
        assert!(overlapped > 0, "{cfg}: no weight beat loaded while a tile computed");
    }
}

/// Reorder each K tile's LOAD_G, LOAD_W into LOAD_W, LOAD_G, so LOAD_W comes
/// straight after the previous RUN (the beats stay in order: they travel on
/// different streams).
fn weights_first(cfg: &ArrayConfig, p: &mut Program) {
    let (g, w) = (
        onebit_driver::Command::new(onebit_driver::Opcode::LoadG, false, cfg.rows as u16).encode(),
        onebit_driver::Command::new(onebit_driver::Opcode::LoadW, false, cfg.beats_per_tile() as u16).encode(),
    );
    for i in 0..p.commands.len() - 1 {
        if p.commands[i] == g && p.commands[i + 1] == w {
            p.commands.swap(i, i + 1);
        }
    }
}

fn run_recorded<D: DevicePorts>(dev: D, p: &Program) -> (ndarray::Array2<i64>, RunStats, Vec<u64>, Vec<u64>) {
    let mut rec = Recorder {
        dev,
        cycle: 0,
        w_valid: false,
        x_valid: false,
        w_accepts: vec![],
        x_accepts: vec![],
    };
    let (got, stats) = run(&mut rec, p, None, 1_000_000).unwrap();
    (got, stats, rec.w_accepts, rec.x_accepts)
}

/// Starves the activation stream: in most cycles the wrapper hides both
/// `x_valid` from the device and `x_ready` from the driver, so RUNs wait long
/// for their first token while later LOAD_G/LOAD_W commands are already
/// fetched. This is the case the g and weight double buffers must survive: the
/// shadow may not change before the waiting RUN's first token has taken it.
struct XStarver<D> {
    dev: D,
    rng: SplitMix64,
    open: bool,
    x_valid: bool,
}

impl<D: DevicePorts> DevicePorts for XStarver<D> {
    fn set_cmd(&mut self, valid: bool, data: u32) {
        self.dev.set_cmd(valid, data)
    }
    fn set_weight(&mut self, valid: bool, data: &[u32]) {
        self.dev.set_weight(valid, data)
    }
    fn set_scale(&mut self, valid: bool, data: u16) {
        self.dev.set_scale(valid, data)
    }
    fn set_activation(&mut self, valid: bool, data: &[u32]) {
        self.x_valid = valid;
        self.dev.set_activation(valid && self.open, data)
    }
    fn set_out_ready(&mut self, ready: bool) {
        self.dev.set_out_ready(ready)
    }
    fn eval(&mut self) {
        self.dev.eval()
    }
    fn cmd_ready(&self) -> bool {
        self.dev.cmd_ready()
    }
    fn weight_ready(&self) -> bool {
        self.dev.weight_ready()
    }
    fn scale_ready(&self) -> bool {
        self.dev.scale_ready()
    }
    fn activation_ready(&self) -> bool {
        self.open && self.dev.activation_ready()
    }
    fn out_valid(&self) -> bool {
        self.dev.out_valid()
    }
    fn out_data(&self) -> u64 {
        self.dev.out_data()
    }
    fn tick(&mut self) {
        self.dev.tick();
        self.open = self.rng.next_u64() % 16 == 0;
    }
}

fn starve<D: DevicePorts>(dev: D, seed: u64) -> XStarver<D> {
    XStarver {
        dev,
        rng: SplitMix64(seed),
        open: false,
        x_valid: false,
    }
}

#[test]
fn starved_activations_keep_g_and_weights_in_order() {
    for seed in 0..6u64 {
        check_layer(&T4X3, &mut starve(t4x3::build().unwrap(), seed), seed, 13, 4, 3, 0.2);
        check_layer(&T3X2, &mut starve(t3x2::build().unwrap(), seed), seed, 8, 3, 1, 0.0);
        // The same with LOAD_W straight after each RUN.
        let mut rng = SplitMix64(seed);
        let layer = random_layer(&mut rng, &T4X4, 11, 5);
        let x = random_activations(&mut rng, &T4X4, 2, 11);
        let mut p = Program::compile(&T4X4, &layer, x.view()).unwrap();
        weights_first(&T4X4, &mut p);
        let (got, _) = run(&mut starve(t4x4::build().unwrap(), seed), &p, None, 1_000_000).unwrap();
        assert_eq!(
            got,
            integer_forward_naive(&T4X4, &layer, x.view()).unwrap(),
            "weights first, seed {seed}"
        );
    }
}
