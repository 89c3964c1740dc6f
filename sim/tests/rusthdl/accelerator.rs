//! The whole accelerator in rust-hdl's simulator, driven by the driver
//! (`PortDevice` + `run_layer`), against the bit-exact reference
//! `integer_forward_naive`: random layers with K and N not multiples of R and
//! C, M = 1 and M past acc_depth, random stalls on every stream; the
//! overlaps (loads beside a running tile, drains beside the next group's
//! compute) measured under stalls; and every interlock switched off once to
//! show a run that then goes wrong.

use crate::common::*;
use onebit_core::ports::DevicePorts;
use onebit_core::reference::integer_forward_naive;
use onebit_core::synth::SplitMix64;
use onebit_core::ArrayConfig;
use onebit_driver::{run_layer, Deadline, PortDevice, Program, StallPolicy};
use onebit_hdl::controller::{Interlocks, Wait};
use proptest::prelude::*;

/// Run a random layer; returns the outcome (output or error text) and the cycles.
fn try_layer<D: DevicePorts>(
    cfg: &ArrayConfig,
    ports: D,
    seed: u64,
    (k, n, m): (usize, usize, usize),
    stall: f32,
) -> (Result<(), String>, u64) {
    let mut rng = SplitMix64(seed);
    let layer = random_layer(&mut rng, cfg, k, n);
    let x = random_activations(&mut rng, cfg, m, k);
    let want = integer_forward_naive(cfg, &layer, x.view()).unwrap();
    let p = Program::compile(cfg, &layer, x.view()).unwrap();
    let mut dev = PortDevice::new(ports, *cfg).with_stalls((stall > 0.0).then_some(StallPolicy { seed: seed ^ 0x5eed, stall }));
    match run_layer(&mut dev, &p, "test", Deadline::for_config(cfg)) {
        Ok(run) if run.output == want => (Ok(()), run.progress.cycles),
        Ok(run) => {
            let wrong = run.output.iter().zip(want.iter()).filter(|(a, b)| a != b).count();
            (Err(format!("{wrong} of {} outputs differ", want.len())), run.progress.cycles)
        }
        Err(e) => (Err(e.to_string()), 0),
    }
}

fn check_layer<D: DevicePorts>(cfg: &ArrayConfig, ports: D, seed: u64, shape: (usize, usize, usize), stall: f32) -> u64 {
    let (r, cycles) = try_layer(cfg, ports, seed, shape, stall);
    if let Err(e) = r {
        panic!("{cfg}: K,N,M={shape:?} seed={seed} stall={stall}: {e}");
    }
    cycles
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn t4x4_matches_reference(seed: u64, k in 1usize..14, n in 1usize..10, m in 1usize..10, stall in 0.0f32..0.6) {
        check_layer(&T4X4, t4x4::build().unwrap(), seed, (k, n, m), stall);
    }

    #[test]
    fn t4x3_matches_reference(seed: u64, k in 1usize..14, n in 1usize..8, m in 1usize..12, stall in 0.0f32..0.6) {
        check_layer(&T4X3, t4x3::build().unwrap(), seed, (k, n, m), stall);
    }

    #[test]
    fn t3x2_matches_reference(seed: u64, k in 1usize..11, n in 1usize..6, m in 1usize..7, stall in 0.0f32..0.6) {
        check_layer(&T3X2, t3x2::build().unwrap(), seed, (k, n, m), stall);
    }

    #[test]
    fn t1x1_matches_reference(seed: u64, k in 1usize..6, n in 1usize..4, m in 1usize..4, stall in 0.0f32..0.6) {
        check_layer(&T1X1, t1x1::build().unwrap(), seed, (k, n, m), stall);
    }
}

/// One device runs several layers back to back: nothing left over from one
/// program (accumulator banks, h banks, weight banks, the bank pointers)
/// leaks into the next.
#[test]
fn programs_run_back_to_back_on_one_device() {
    let mut dev = PortDevice::new(t4x3::build().unwrap(), T4X3);
    for (i, (k, n, m)) in [(7, 5, 6), (1, 1, 1), (9, 4, 11), (4, 3, 5), (13, 7, 1)].into_iter().enumerate() {
        let mut rng = SplitMix64(100 + i as u64);
        let layer = random_layer(&mut rng, &T4X3, k, n);
        let x = random_activations(&mut rng, &T4X3, m, k);
        let p = Program::compile(&T4X3, &layer, x.view()).unwrap();
        dev.set_stalls((i % 2 == 0).then_some(StallPolicy { seed: i as u64, stall: 0.3 }));
        let run = run_layer(&mut dev, &p, "test", Deadline::for_config(&T4X3)).unwrap();
        assert_eq!(run.output, integer_forward_naive(&T4X3, &layer, x.view()).unwrap(), "program {i}");
    }
}

/// Every value at its extreme: x = -2^(A-1), g = -2^(G-1), h = -2^(H-1), all
/// signs -1: lanes and outputs saturate, and the hardware must still agree.
#[test]
fn extremes_saturate_like_the_reference() {
    use onebit_core::numerics::FixedVector;
    for cfg in [T4X3, T4X4] {
        let (k, n, m) = (2 * cfg.rows + 1, cfg.cols + 1, 3);
        for (xv, gv, hv, sign) in [(-1i64, -1i64, -1i64, -1i8), (-1, 1, 1, 1), (1, -1, -1, -1), (1, 1, 1, -1)] {
            let pick = |bits: u32, s: i64| if s < 0 { -(1i64 << (bits - 1)) } else { (1i64 << (bits - 1)) - 1 };
            let layer = onebit_core::QuantizedLayer {
                in_features: k,
                out_features: n,
                signs: onebit_core::pack::pack_sign_values(&vec![sign; n * k], n, k),
                g: FixedVector { q: vec![pick(cfg.g_bits, gv) as i32; k], frac: 0 },
                h: FixedVector { q: vec![pick(cfg.h_bits, hv) as i32; n], frac: 0 },
            };
            let x = ndarray::Array2::from_elem((m, k), pick(cfg.act_bits, xv) as i32);
            let want = integer_forward_naive(&cfg, &layer, x.view()).unwrap();
            let p = Program::compile(&cfg, &layer, x.view()).unwrap();
            let got = if cfg == T4X3 {
                run_layer(&mut PortDevice::new(t4x3::build().unwrap(), cfg), &p, "x", Deadline::for_config(&cfg)).unwrap().output
            } else {
                run_layer(&mut PortDevice::new(t4x4::build().unwrap(), cfg), &p, "x", Deadline::for_config(&cfg)).unwrap().output
            };
            assert_eq!(got, want, "{cfg}");
            if cfg == T4X3 {
                let max = ArrayConfig::sym_max(cfg.out_bits);
                assert!(want.iter().all(|v| v.abs() == max), "T4X3 extremes must saturate the outputs: {want}");
            }
        }
    }
}

/// The presets themselves (and the wide-beat test configuration) in rust-hdl:
/// K and N not multiples of R and C, M = 1 and M > 1.
#[test]
fn presets_match_reference() {
    use onebit_hdl::presets::{ecp5, ice40, sim16, t6x4};
    check_layer(&ArrayConfig::SIM16, sim16::build().unwrap(), 7, (37, 21, 3), 0.25);
    check_layer(&ArrayConfig::SIM16, sim16::build().unwrap(), 8, (20, 17, 1), 0.0);
    check_layer(&ArrayConfig::ICE40, ice40::build().unwrap(), 11, (19, 11, 5), 0.3);
    // The 32×32 ecp5 preset (only the driver benchmark verilates it): K and
    // N past one tile, random stalls.
    check_layer(&ArrayConfig::ECP5, ecp5::build().unwrap(), 12, (45, 37, 3), 0.3);
    for seed in 0..4 {
        check_layer(&ArrayConfig::T6X4, t6x4::build().unwrap(), seed, (6 * seed as usize + 5, 9, 7 + seed as usize), 0.2 * seed as f32);
    }
}

/// Records the cycle of every handshake, to measure overlap.
struct Recorder<D> {
    dev: D,
    cycle: u64,
    valid: [bool; 3],
    o_ready: bool,
    /// Cycles in which a weight beat, an activation beat, an output beat moved.
    w: Vec<u64>,
    x: Vec<u64>,
    o: Vec<u64>,
}

impl<D> Recorder<D> {
    fn new(dev: D) -> Self {
        Recorder { dev, cycle: 0, valid: [false; 3], o_ready: false, w: vec![], x: vec![], o: vec![] }
    }
}

impl<D: DevicePorts> DevicePorts for Recorder<D> {
    fn set_reset(&mut self, r: bool) {
        self.dev.set_reset(r)
    }
    fn set_cmd(&mut self, v: bool, d: u32) {
        self.dev.set_cmd(v, d)
    }
    fn set_weight(&mut self, v: bool, d: &[u32]) {
        self.valid[0] = v;
        self.dev.set_weight(v, d)
    }
    fn set_scale(&mut self, v: bool, d: &[u32]) {
        self.dev.set_scale(v, d)
    }
    fn set_activation(&mut self, v: bool, d: &[u32]) {
        self.valid[1] = v;
        self.dev.set_activation(v, d)
    }
    fn set_out_ready(&mut self, r: bool) {
        self.o_ready = r;
        self.dev.set_out_ready(r)
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
    fn out_data(&self) -> Vec<u32> {
        self.dev.out_data()
    }
    fn tick(&mut self) {
        if self.valid[0] && self.dev.weight_ready() {
            self.w.push(self.cycle);
        }
        if self.valid[1] && self.dev.activation_ready() {
            self.x.push(self.cycle);
        }
        if self.o_ready && self.dev.out_valid() {
            self.o.push(self.cycle);
        }
        self.dev.tick();
        self.cycle += 1;
    }
}

/// Under random stalls on every stream: weight beats of later tiles are
/// taken while earlier tiles' tokens are still in the array, and output
/// beats of one group leave while the next group's tokens are accepted
/// (the drain runs beside the compute); the results stay exact.
#[test]
fn loads_and_drains_overlap_compute_under_stalls() {
    for (seed, stall) in [(1u64, 0.0f32), (2, 0.2), (3, 0.4)] {
        let cfg = T4X4;
        let mut rng = SplitMix64(seed);
        let (k, n, m) = (3 * cfg.rows + 1, 3 * cfg.cols, cfg.acc_depth);
        let layer = random_layer(&mut rng, &cfg, k, n);
        let x = random_activations(&mut rng, &cfg, m, k);
        let p = Program::compile(&cfg, &layer, x.view()).unwrap();
        let mut dev = PortDevice::new(Recorder::new(t4x4::build().unwrap()), cfg).with_stalls((stall > 0.0).then_some(StallPolicy { seed, stall }));
        let run = run_layer(&mut dev, &p, "overlap", Deadline::for_config(&cfg)).unwrap();
        assert_eq!(run.output, integer_forward_naive(&cfg, &layer, x.view()).unwrap());
        let rec = &dev.ports;
        let in_flight = (cfg.rows + 1) as u64;
        let loads = rec.w.iter().filter(|&&t| rec.x.iter().any(|&xt| xt < t && t <= xt + in_flight)).count();
        let drains = rec.o.iter().filter(|&&t| rec.x.iter().any(|&xt| xt > t)).count();
        println!("stall {stall}: {loads} of {} weight beats beside tokens in flight, {drains} of {} output beats before later tokens, {} cycles", rec.w.len(), rec.o.len(), run.progress.cycles);
        assert!(loads > 0, "stall {stall}: no weight beat loaded while a tile computed");
        assert!(drains > 0, "stall {stall}: no output beat left while later tokens were still coming");
    }
}

/// Starves the activation stream: in most cycles the wrapper hides both
/// `x_valid` from the device and `x_ready` from the driver, so tiles wait long
/// for their tokens while the loader fills every bank ahead and DRAINs wait
/// on their tiles. This is what the weight banks and the drain marks must
/// survive.
struct XStarver<D> {
    dev: D,
    rng: SplitMix64,
    open: bool,
}

impl<D: DevicePorts> DevicePorts for XStarver<D> {
    fn set_reset(&mut self, r: bool) {
        self.dev.set_reset(r)
    }
    fn set_cmd(&mut self, v: bool, d: u32) {
        self.dev.set_cmd(v, d)
    }
    fn set_weight(&mut self, v: bool, d: &[u32]) {
        self.dev.set_weight(v, d)
    }
    fn set_scale(&mut self, v: bool, d: &[u32]) {
        self.dev.set_scale(v, d)
    }
    fn set_activation(&mut self, v: bool, d: &[u32]) {
        self.dev.set_activation(v && self.open, d)
    }
    fn set_out_ready(&mut self, r: bool) {
        self.dev.set_out_ready(r)
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
    fn out_data(&self) -> Vec<u32> {
        self.dev.out_data()
    }
    fn tick(&mut self) {
        self.dev.tick();
        self.open = self.rng.next_u64() % 16 == 0;
    }
}

fn starve<D: DevicePorts>(dev: D, seed: u64) -> XStarver<D> {
    XStarver { dev, rng: SplitMix64(seed), open: false }
}

#[test]
fn starved_activations_keep_banks_and_drains_in_order() {
    for seed in 0..6u64 {
        check_layer(&T4X3, starve(t4x3::build().unwrap(), seed), seed, (13, 7, 3), 0.2);
        check_layer(&T3X2, starve(t3x2::build().unwrap(), seed), seed, (8, 5, 1), 0.0);
        check_layer(&T4X4, starve(t4x4::build().unwrap(), seed), seed, (5, 9, 6), 0.3);
    }
}

// ---- Each interlock switched off once: some run must then go wrong. ----

/// 2×2 with one-beat tiles and 4 banks: consecutive tiles' tokens for the
/// same accumulator word arrive one cycle apart (the forwarding case), and
/// the loader can refill a bank one tile after its token left the g
/// scalers (the bank-hold case).
const T2X2: ArrayConfig = ArrayConfig {
    rows: 2,
    cols: 2,
    act_bits: 8,
    g_bits: 8,
    lane_bits: 12,
    h_bits: 16,
    out_bits: 18,
    weight_beat_bits: 4,
    max_k: 64,
    acc_depth: 4,
    weight_banks: 4,
    out_words_per_beat: 2,
};
onebit_hdl::accelerator_for!(t2x2, crate::accelerator::T2X2);

/// 6×2 with one-beat tiles and 2 banks: a bank comes back to the loader
/// while the last token that used it is still in the lower rows.
const T6X2: ArrayConfig = ArrayConfig {
    rows: 6,
    cols: 2,
    act_bits: 8,
    g_bits: 8,
    lane_bits: 12,
    h_bits: 16,
    out_bits: 18,
    weight_beat_bits: 12,
    max_k: 64,
    acc_depth: 4,
    weight_banks: 2,
    out_words_per_beat: 1,
};
onebit_hdl::accelerator_for!(t6x2, crate::accelerator::T6X2);

/// Slow output consumer: the output stream is ready one cycle in eight, so
/// drains last long and later groups catch up with them.
struct SlowOutput<D> {
    dev: D,
    cycle: u64,
}

impl<D: DevicePorts> DevicePorts for SlowOutput<D> {
    fn set_reset(&mut self, r: bool) {
        self.dev.set_reset(r)
    }
    fn set_cmd(&mut self, v: bool, d: u32) {
        self.dev.set_cmd(v, d)
    }
    fn set_weight(&mut self, v: bool, d: &[u32]) {
        self.dev.set_weight(v, d)
    }
    fn set_scale(&mut self, v: bool, d: &[u32]) {
        self.dev.set_scale(v, d)
    }
    fn set_activation(&mut self, v: bool, d: &[u32]) {
        self.dev.set_activation(v, d)
    }
    fn set_out_ready(&mut self, r: bool) {
        self.dev.set_out_ready(r && self.cycle % 8 == 0)
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
        self.cycle % 8 == 0 && self.dev.out_valid()
    }
    fn out_data(&self) -> Vec<u32> {
        self.dev.out_data()
    }
    fn tick(&mut self) {
        self.dev.tick();
        self.cycle += 1;
    }
}

/// Runs `cases` with every interlock on (all must pass) and with `off`
/// switched off (at least one must fail), on the accelerator `build` makes.
fn interlock_is_needed<D: DevicePorts>(
    name: &str,
    cfg: &ArrayConfig,
    build: impl Fn(Interlocks) -> D,
    off: Interlocks,
    cases: &[(u64, (usize, usize, usize))],
) {
    let mut failed = 0;
    for &(seed, shape) in cases {
        let (on, _) = try_layer(cfg, build(Interlocks::default()), seed, shape, 0.0);
        on.unwrap_or_else(|e| panic!("{name}: with every interlock on, seed {seed} {shape:?}: {e}"));
        if let (Err(e), _) = try_layer(cfg, build(off), seed, shape, 0.0) {
            println!("{name} off, seed {seed} {shape:?}: {e}");
            failed += 1;
        }
    }
    assert!(failed > 0, "{name}: switching it off broke none of {} runs: the test does not show it is needed", cases.len());
}

#[test]
fn bank_hold_is_needed() {
    let off = Interlocks { bank_hold: false, ..Interlocks::default() };
    let cases: Vec<_> = (0..4).map(|s| (s, (36, 2, 1))).collect();
    interlock_is_needed("bank_hold", &T6X2, |l| t6x2::build_with(l).unwrap(), off, &cases);
}

/// Activations held back for the first `open_at` cycles, then free: the
/// loader fills every bank meanwhile, and the tiles then run back to back,
/// one token each, so consecutive tiles' tokens reach the same accumulator
/// word one cycle apart.
struct LateActivations<D> {
    dev: D,
    cycle: u64,
    open_at: u64,
}

impl<D: DevicePorts> DevicePorts for LateActivations<D> {
    fn set_reset(&mut self, r: bool) {
        self.dev.set_reset(r)
    }
    fn set_cmd(&mut self, v: bool, d: u32) {
        self.dev.set_cmd(v, d)
    }
    fn set_weight(&mut self, v: bool, d: &[u32]) {
        self.dev.set_weight(v, d)
    }
    fn set_scale(&mut self, v: bool, d: &[u32]) {
        self.dev.set_scale(v, d)
    }
    fn set_activation(&mut self, v: bool, d: &[u32]) {
        self.dev.set_activation(v && self.cycle >= self.open_at, d)
    }
    fn set_out_ready(&mut self, r: bool) {
        self.dev.set_out_ready(r)
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
        self.cycle >= self.open_at && self.dev.activation_ready()
    }
    fn out_valid(&self) -> bool {
        self.dev.out_valid()
    }
    fn out_data(&self) -> Vec<u32> {
        self.dev.out_data()
    }
    fn tick(&mut self) {
        self.dev.tick();
        self.cycle += 1;
    }
}

#[test]
fn tile_spacing_is_needed() {
    let off = Interlocks { tile_spacing: false, ..Interlocks::default() };
    let cases: Vec<_> = (0..4).map(|s| (s, (8, 2, 1))).collect();
    interlock_is_needed("tile_spacing", &T2X2, |l| LateActivations { dev: t2x2::build_with(l).unwrap(), cycle: 0, open_at: 40 }, off, &cases);
}

#[test]
fn flush_is_needed() {
    let off = Interlocks { flush: false, ..Interlocks::default() };
    let cases: Vec<_> = (0..4).map(|s| (s, (7, 5, 3))).collect();
    interlock_is_needed("flush", &T4X4, |l| t4x4::build_with(l).unwrap(), off, &cases);
}

#[test]
fn tiles_before_drain_is_needed() {
    let off = Interlocks { tiles_before_drain: false, flush: false, ..Interlocks::default() };
    let cases: Vec<_> = (0..4).map(|s| (s, (13, 5, 3))).collect();
    // flush alone would hold a drain back only while tokens are in flight;
    // with tokens starved, only the tile check does.
    interlock_is_needed("tiles_before_drain", &T4X4, |l| starve(t4x4::build_with(l).unwrap(), 9), off, &cases);
}

#[test]
fn drain_before_reuse_is_needed() {
    let off = Interlocks { drain_before_reuse: false, ..Interlocks::default() };
    let cases: Vec<_> = (0..4).map(|s| (s, (4, 16, 4))).collect();
    interlock_is_needed("drain_before_reuse", &T4X4, |l| SlowOutput { dev: t4x4::build_with(l).unwrap(), cycle: 0 }, off, &cases);
}

#[test]
fn h_bank_free_is_needed() {
    let off = Interlocks { h_bank_free: false, ..Interlocks::default() };
    let cases: Vec<_> = (0..4).map(|s| (s, (4, 16, 4))).collect();
    interlock_is_needed("h_bank_free", &T4X4, |l| SlowOutput { dev: t4x4::build_with(l).unwrap(), cycle: 0 }, off, &cases);
}

/// The three counted waits are exact: one cycle below the minimum each
/// derivation gives (controller.rs, timing.rs) corrupts some of the runs
/// that show the interlock is needed (the hardware waits the minimum for
/// the flush and the spacing, and two cycles more than it for the hold).
#[test]
fn counted_waits_are_exact() {
    let below = |w| Interlocks { below_minimum: Some(w), ..Interlocks::default() };
    let hold_cases: Vec<_> = (0..4).map(|s| (s, (36, 2, 1))).collect();
    interlock_is_needed("hold below its minimum", &T6X2, |l| t6x2::build_with(l).unwrap(), below(Wait::Hold), &hold_cases);
    let flush_cases: Vec<_> = (0..3).flat_map(|s| [(s, (4, 8, 1)), (s, (4, 8, 2)), (s, (5, 9, 4)), (s, (13, 5, 3))]).collect();
    interlock_is_needed("flush below its minimum", &T4X4, |l| t4x4::build_with(l).unwrap(), below(Wait::Flush), &flush_cases);
    let spacing_cases: Vec<_> = (0..4).map(|s| (s, (8, 2, 1))).collect();
    interlock_is_needed(
        "tile spacing below its minimum",
        &T2X2,
        |l| LateActivations { dev: t2x2::build_with(l).unwrap(), cycle: 0, open_at: 40 },
        below(Wait::Spacing),
        &spacing_cases,
    );
}
