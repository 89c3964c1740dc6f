//! Each block alone in rust-hdl's simulator against a plain model built from
//! `onebit_core::numerics` (the contract): PE, g scaler, h scaler, array tile,
//! output accumulator.

use crate::common::*;
use onebit_core::numerics::{lane_value, scale_output};
use onebit_core::synth::SplitMix64;
use onebit_core::ArrayConfig;
use onebit_hdl::util::{signed_value, twos};
use onebit_hdl::{GScaler, HScaler, OutputAccumulator, SignAccumulatePe, SystolicArray};
use proptest::prelude::*;
use rust_hdl::prelude::*;

fn wrap(v: i64, bits: usize) -> i64 {
    let s = 64 - bits;
    (v << s) >> s
}

proptest! {
    /// A PE against its definition, cycle by cycle, on random inputs:
    /// psum_out = psum_in ± lane_in registered (wrapping at P bits, which a
    /// real array never reaches), − when the bank that sel_in selected in the
    /// previous cycle held a 1; a write puts wr_bit into the banks wr_en
    /// names, visible from the next cycle, and leaves the others alone.
    #[test]
    fn pe_matches_its_definition(ops in prop::collection::vec((any::<i16>(), 0usize..3, any::<i16>(), 0u64..8, any::<bool>()), 1..60)) {
        const L: usize = 12;
        const P: usize = 14;
        const NB: usize = 3;
        let mut pe = SignAccumulatePe::<L, P, NB>::default();
        pe.connect_all();
        let (mut banks, mut psum, mut subtract) = (0u64, 0i64, false);
        for (a, sel, p, en, bit) in ops {
            let a = wrap(a as i64, L);
            let p = wrap(p as i64, P);
            pe.lane_in.next = twos::<P>(a);
            pe.sel_in.next = Bits::<NB>::from(1u64 << sel);
            pe.psum_in.next = twos::<P>(p);
            pe.wr_en.next = Bits::<NB>::from(en);
            pe.wr_bit.next = bit;
            settle(&mut pe);
            prop_assert_eq!(signed_value(pe.psum_out.val()), psum);
            psum = wrap(if subtract { p - a } else { p + a }, P);
            subtract = (banks >> sel) & 1 == 1;
            banks = if bit { banks | en } else { banks & !en };
            clock_cycle(&mut pe, |u| &mut u.clock);
        }
    }
}

/// The g scaler is a pipeline of `LANE_LATENCY` stages: a token is
/// presented every cycle (with its bank), and each lane is checked when it
/// leaves, against `lane_value` with the g its bank held when the token was
/// presented (a bank written in the token's cycle still gives the old g).
fn gscaler_sweep<const A: usize, const G: usize, const L: usize>(cfg: &ArrayConfig, gs: &[i64], xs: &[i64]) {
    use onebit_hdl::timing::LANE_LATENCY;
    use std::collections::VecDeque;
    const NB: usize = 3;
    let cfg = ArrayConfig { weight_banks: NB, ..*cfg };
    let mut g = GScaler::<A, G, L, NB>::new(&cfg);
    g.connect_all();
    let mut banks = [0i64; NB];
    let mut expect: VecDeque<Option<(i64, i64, usize)>> = VecDeque::new();
    let mut step = |g: &mut GScaler<A, G, L, NB>, banks: &mut [i64; NB], write: Option<(usize, i64)>, token: Option<(usize, i64)>| {
        g.g_wr.next = Bits::<NB>::from(write.map_or(0, |(b, _)| 1u64 << b));
        if let Some((_, v)) = write {
            g.g_in.next = twos::<G>(v);
        }
        if let Some((b, x)) = token {
            g.x_in.next = twos::<A>(x);
            g.sel.next = Bits::<NB>::from(1 << b);
            expect.push_back(Some((x, banks[b], b)));
        } else {
            expect.push_back(None);
        }
        if let Some((b, v)) = write {
            banks[b] = v;
        }
        clock_cycle(g, |u| &mut u.clock);
        if expect.len() == LANE_LATENCY {
            if let Some((x, want_g, b)) = expect.pop_front().unwrap() {
                assert_eq!(signed_value(g.lane_out.val()), lane_value(&cfg, x, want_g), "{cfg}: x={x} g={want_g} bank {b}");
            }
        }
    };
    // Bank 2 keeps one value throughout while the others are rewritten.
    let fixed = gs[gs.len() / 2];
    step(&mut g, &mut banks, Some((2, fixed)), None);
    for (i, &gq) in gs.iter().enumerate() {
        let bank = i % 2;
        // The write comes with a token of the same bank, which still uses the old g.
        step(&mut g, &mut banks, Some((bank, gq)), Some((bank, xs[i % xs.len()])));
        // Tokens of the new bank and of the fixed one, interleaved.
        for (j, &x) in xs.iter().enumerate() {
            let b = if j % 3 == 2 { 2 } else { bank };
            step(&mut g, &mut banks, None, Some((b, x)));
        }
    }
    for _ in 0..LANE_LATENCY {
        step(&mut g, &mut banks, None, None);
    }
    assert!(expect.iter().all(Option::is_none));
}

/// Every (x_q, g_q) pair of the 8-bit presets: sim16 (lane 12, shift 3) and
/// iCE40 (lane 10, shift 5), saturation included.
#[test]
fn gscaler_exhaustive_8bit() {
    let all: Vec<i64> = (-128..=127).collect();
    gscaler_sweep::<8, 8, 12>(&ArrayConfig::SIM16, &all, &all);
    gscaler_sweep::<8, 8, 10>(&ArrayConfig::ICE40, &all, &all);
    gscaler_sweep::<8, 8, 9>(&T4X3, &all, &all);
}

proptest! {
    /// 16-bit activations and scales (the widest the contract allows), lane 16.
    #[test]
    fn gscaler_16bit(xs in prop::collection::vec(any::<i16>(), 1..20), g: i16) {
        let cfg = ArrayConfig { act_bits: 16, g_bits: 16, lane_bits: 16, ..ArrayConfig::SIM16 };
        let xs: Vec<i64> = xs.into_iter().map(|v| v as i64).chain([-32768, 32767]).collect();
        gscaler_sweep::<16, 16, 16>(&cfg, &[g as i64, -32768, 32767], &xs);
    }
}

/// Push words through an h scaler, some cycles without one: every word
/// leaves exactly `H_STAGES` cycles after it entered, marked valid, equal to
/// `scale_output`, and no valid word leaves that did not enter; a reset
/// drops the words in flight.
fn hscaler_stream<const ACC: usize, const H: usize, const O: usize>(
    cfg: &ArrayConfig,
    words: &[(i64, i64)],
    seed: u64,
) {
    use onebit_hdl::timing::H_STAGES;
    use std::collections::VecDeque;
    let mut hs = HScaler::<ACC, H, O>::new(cfg);
    hs.connect_all();
    let mut rng = SplitMix64(seed);
    let mut expect: VecDeque<Option<i64>> = (0..H_STAGES).map(|_| None).collect();
    let (mut next, mut got, mut dropped) = (0usize, 0usize, 0usize);
    let mut cycle = 0;
    while next < words.len() || expect.iter().any(Option::is_some) {
        cycle += 1;
        // Once, a reset with words in flight: they never come out.
        let reset = cycle == 7;
        let offer = next < words.len() && rng.next_u64() % 4 != 0;
        hs.reset.next = reset;
        hs.valid_in.next = offer;
        if offer {
            hs.acc_in.next = twos::<ACC>(words[next].0);
            hs.h_in.next = twos::<H>(words[next].1);
        }
        settle(&mut hs);
        let want = expect.pop_front().unwrap();
        assert_eq!(hs.valid_out.val(), want.is_some(), "cycle {cycle}: valid_out");
        if let Some(w) = want {
            assert_eq!(signed_value(hs.word_out.val()), w, "{cfg}: word {got}");
            got += 1;
        }
        if reset {
            dropped += expect.iter().filter(|e| e.is_some()).count() + offer as usize;
            expect.iter_mut().for_each(|e| *e = None);
        }
        // A word offered in the reset's cycle is dropped too.
        expect.push_back((offer && !reset).then(|| scale_output(cfg, words[next].0, words[next].1)));
        if offer {
            next += 1;
        }
        clock_cycle(&mut hs, |u| &mut u.clock);
    }
    assert_eq!(got + dropped, words.len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
    /// sim16 widths (acc 26 × h 16 → out 26) and T4X3's (acc 15 × h 12 → out
    /// 10, saturating), extremes mixed in.
    #[test]
    fn hscaler_matches_scale_output(seed: u64, n in 1usize..30) {
        let mut rng = SplitMix64(seed);
        for cfg in [ArrayConfig::SIM16, T4X3] {
            let words: Vec<(i64, i64)> = (0..n)
                .map(|_| (port_value(&mut rng, cfg.acc_bits()), port_value(&mut rng, cfg.h_bits)))
                .collect();
            if cfg == T4X3 {
                hscaler_stream::<15, 12, 10>(&cfg, &words, seed);
            } else {
                hscaler_stream::<26, 16, 26>(&cfg, &words, seed);
            }
        }
    }
}

/// A 4×3 array alone, 4-bit beats (3 per tile), 3 banks: tiles load into
/// banks 0, 1 and 2 while tokens of the earlier banks pass through the array,
/// tokens alternate banks; every token's column sums leave the south edge
/// together, R cycles after its lanes entered, with its tags, equal to
/// Σ_r sign·lane of its bank's tile.
#[test]
fn array_sums_banked_tiles_loaded_beside_tokens() {
    const R: usize = 4;
    const C: usize = 3;
    const L: usize = 12;
    const P: usize = 14;
    const WB: usize = 4;
    const NB: usize = 3;
    const B: usize = R * C / WB;
    let mut arr = SystolicArray::<R, C, L, P, WB, NB, B, { R * L }, { C * P }>::new();
    arr.connect_all();
    let mut rng = SplitMix64(42);
    let tiles: Vec<Vec<bool>> = (0..NB).map(|_| (0..R * C).map(|_| rng.next_u64() & 1 == 1).collect()).collect();
    let lmax = ArrayConfig::sym_max(L as u32);
    let beat = |tile: &Vec<bool>, b: usize| {
        let mut v = 0u64;
        for j in 0..WB {
            v |= (tile[b * WB + j] as u64) << j;
        }
        Bits::<WB>::from(v)
    };
    // Schedule: bank 0 loads in cycles 0..3, bank 1 in 3..6, bank 2 in
    // 6..9; tokens of bank 0 from cycle 4, of bank 1 from cycle 7 (bank 2
    // loading beside them), then tokens alternating all three banks.
    let mut tokens: Vec<(usize, u64, Vec<i64>)> = vec![];
    for t in 0..16u64 {
        let (bank, cycle) = match t {
            0..=3 => (0, 5 + t),
            4..=7 => (1, 5 + t),
            _ => ((t % 3) as usize, 6 + t),
        };
        let lanes = (0..R).map(|_| if t % 5 == 0 { -lmax } else { rng.range_i64(-lmax, lmax) }).collect();
        tokens.push((bank, cycle, lanes));
    }
    let mut seen = vec![];
    for cycle in 0..40u64 {
        let load = (cycle < 9).then(|| ((cycle / 3) as usize, (cycle % 3) as usize));
        arr.w_fire.next = load.is_some();
        if let Some((bank, b)) = load {
            arr.w_group.next = Bits::<B>::from(1 << b);
            arr.w_bank.next = Bits::<NB>::from(1 << bank);
            arr.w_data.next = beat(&tiles[bank], b);
        }
        let tok = tokens.iter().position(|t| t.1 == cycle);
        let mut lanes = Bits::<{ R * L }>::default();
        if let Some(i) = tok {
            for r in 0..R {
                lanes.set_bits::<L>(r * L, twos::<L>(tokens[i].2[r]));
            }
        }
        // The bank goes a cycle ahead of the lanes.
        if let Some(next) = tokens.iter().find(|t| t.1 == cycle + 1) {
            arr.west_sel.next = Bits::<NB>::from(1 << next.0);
        }
        arr.west_lanes.next = lanes;
        arr.west_valid.next = tok.is_some();
        arr.west_first.next = tok == Some(0);
        arr.west_acc.next = tok.is_some_and(|i| i % 2 == 1);
        arr.west_accbank.next = tok.is_some_and(|i| i % 3 == 0);
        arr.reset.next = false;
        settle(&mut arr);
        if arr.south_valid.val() {
            let i = seen.len();
            assert_eq!(cycle, tokens[i].1 + R as u64, "token {i} leaves R cycles after it entered");
            assert_eq!((arr.south_first.val(), arr.south_acc.val(), arr.south_accbank.val()), (i == 0, i % 2 == 1, i % 3 == 0), "token {i} tags");
            seen.push((0..C).map(|c| signed_value(arr.south_psums.val().get_bits::<P>(c * P))).collect::<Vec<_>>());
        }
        clock_cycle(&mut arr, |u| &mut u.clock);
    }
    assert_eq!(seen.len(), tokens.len());
    for (i, (bank, _, lanes)) in tokens.iter().enumerate() {
        let tile = &tiles[*bank];
        for c in 0..C {
            let want: i64 = (0..R).map(|r| if tile[c * R + r] { -lanes[r] } else { lanes[r] }).sum();
            assert_eq!(seen[i][c], want, "token {i} (bank {bank}) column {c}");
        }
    }
}

/// Drives one accumulator column with the accelerator's timing: a token's
/// tags at cycle e, its partial sum at e + TAG_LEAD, a drain read's word
/// ACC_READ_LATENCY cycles after its address. Records every drained word.
struct AccDriver<const P: usize, const ACC: usize, const AD: usize> {
    acc: OutputAccumulator<P, ACC, AD>,
    psums: std::collections::VecDeque<i64>,
    reads: std::collections::VecDeque<Option<usize>>,
    drained: Vec<(usize, i64)>,
}

impl<const P: usize, const ACC: usize, const AD: usize> AccDriver<P, ACC, AD> {
    fn new() -> Self {
        use onebit_hdl::timing::{ACC_READ_LATENCY, TAG_LEAD};
        let mut acc = OutputAccumulator::<P, ACC, AD>::default();
        acc.connect_all();
        Self { acc, psums: (0..TAG_LEAD).map(|_| 0).collect(), reads: (0..ACC_READ_LATENCY).map(|_| None).collect(), drained: vec![] }
    }
    /// One cycle: maybe a token (first, acc, bank, psum), maybe a drain read (bank, address).
    fn cycle(&mut self, token: Option<(bool, bool, bool, i64)>, read: Option<(bool, usize)>) {
        let a = &mut self.acc;
        a.valid_in.next = token.is_some();
        let (first, acc, bank, psum) = token.unwrap_or((false, false, false, 0));
        a.first_in.next = first;
        a.acc_in.next = acc;
        a.bank_in.next = bank;
        self.psums.push_back(psum);
        a.psum_in.next = twos::<P>(self.psums.pop_front().unwrap());
        a.drain_rd.next = read.is_some();
        if let Some((b, addr)) = read {
            a.drain_bank.next = b;
            a.drain_addr.next = twos::<AD>(addr as i64);
        }
        a.reset.next = false;
        settle(a);
        if let Some(addr) = self.reads.pop_front().unwrap() {
            self.drained.push((addr, signed_value(a.acc_out.val())));
        }
        self.reads.push_back(read.map(|r| r.1));
        clock_cycle(a, |u| &mut u.clock);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]
    /// One column's accumulator across K tiles in one bank while the other
    /// bank is drained: runs of M tokens, the first overwriting, later ones
    /// adding, with random bubbles and consecutive tiles as close as the
    /// controller lets them come (a tile's token i at least ACC_SPACING
    /// cycles after the previous tile's), the other bank's words read every
    /// cycle meanwhile; then every token of the accumulating bank drained.
    #[test]
    fn accumulator_adds_across_k_tiles_beside_a_drain(seed: u64, m in 1usize..8, tiles in 1usize..5, bank: bool) {
        use onebit_hdl::timing::ACC_SPACING;
        const P: usize = 14;
        const ACC: usize = 20;
        const AD: usize = 3;
        let mut d = AccDriver::<P, ACC, AD>::new();
        let mut rng = SplitMix64(seed);
        let pmax = ArrayConfig::sym_max(P as u32);
        // The other bank first holds known words (one run, no add).
        let other: Vec<i64> = (0..m).map(|t| t as i64 * 7 - 20).collect();
        for (t, &v) in other.iter().enumerate() {
            d.cycle(Some((t == 0, false, !bank, v)), None);
        }
        // Its last word is written ACC_SPACING cycles later.
        for _ in 0..ACC_SPACING {
            d.cycle(None, None);
        }
        let mut model = vec![0i64; m];
        let mut read = 0usize;
        for tile in 0..tiles {
            let mut t = 0;
            while t < m {
                let bubble = rng.next_u64() % 3 == 0;
                let v = if rng.next_u64() % 4 == 0 { -pmax } else { rng.range_i64(-pmax, pmax) };
                let token = (!bubble).then_some((t == 0, tile > 0, bank, v));
                if !bubble {
                    model[t] = if tile > 0 { model[t] + v } else { v };
                    t += 1;
                }
                d.cycle(token, Some((!bank, read % m)));
                read += 1;
            }
            // The controller's wait before the next tile's first token.
            for _ in 0..ACC_SPACING.saturating_sub(m) {
                d.cycle(None, Some((!bank, read % m)));
                read += 1;
            }
        }
        for _ in 0..ACC_SPACING {
            d.cycle(None, None);
        }
        for t in 0..m {
            d.cycle(None, Some((bank, t)));
        }
        for _ in 0..4 {
            d.cycle(None, None);
        }
        let (others, mine) = d.drained.split_at(read);
        for &(addr, v) in others {
            prop_assert_eq!(v, other[addr], "other bank, word {}", addr);
        }
        for &(addr, v) in mine {
            prop_assert_eq!(v, model[addr], "token {}", addr);
        }
        prop_assert_eq!(mine.len(), m);
    }
}

/// The generic form's spacing is exact: two one-token tiles for the same
/// word, the second adding, give the sum when ACC_SPACING_GENERIC cycles
/// apart, and miss the first one's write (its word is read before the sum
/// is written) one cycle closer. (The ECP5 form reads an edge earlier and
/// needs ACC_SPACING, one more: hdl/tests/hdl/verilog.rs.)
#[test]
fn accumulator_spacing_is_exact() {
    use onebit_hdl::timing::ACC_SPACING_GENERIC;
    for (gap, want) in [(ACC_SPACING_GENERIC, 30 + 12), (ACC_SPACING_GENERIC - 1, 5 + 12)] {
        let mut d = AccDriver::<14, 20, 3>::new();
        // The word starts at 5 (another tile, long before).
        d.cycle(Some((true, false, false, 5)), None);
        for _ in 0..8 {
            d.cycle(None, None);
        }
        d.cycle(Some((true, false, false, 30)), None);
        for _ in 1..gap {
            d.cycle(None, None);
        }
        d.cycle(Some((true, true, false, 12)), None);
        for _ in 0..8 {
            d.cycle(None, None);
        }
        d.cycle(None, Some((false, 0)));
        for _ in 0..4 {
            d.cycle(None, None);
        }
        assert_eq!(d.drained, vec![(0, want)], "tiles {gap} cycles apart");
    }
}
