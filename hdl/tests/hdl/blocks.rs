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

fn gscaler_sweep<const A: usize, const G: usize, const L: usize>(cfg: &ArrayConfig, gs: &[i64], xs: &[i64]) {
    const NB: usize = 3;
    let cfg = ArrayConfig { weight_banks: NB, ..*cfg };
    let mut g = GScaler::<A, G, L, NB>::new(&cfg);
    g.connect_all();
    // Bank 2 keeps one value throughout while the others are rewritten.
    let fixed = gs[gs.len() / 2];
    g.g_in.next = twos::<G>(fixed);
    g.g_wr.next = Bits::<NB>::from(4);
    clock_cycle(&mut g, |u| &mut u.clock);
    for (i, &gq) in gs.iter().enumerate() {
        let bank = i % 2;
        g.g_in.next = twos::<G>(gq);
        g.g_wr.next = Bits::<NB>::from(1 << bank);
        clock_cycle(&mut g, |u| &mut u.clock);
        g.g_wr.next = Bits::<NB>::from(0);
        // Tokens of the new bank and of the fixed one, interleaved.
        for (j, &x) in xs.iter().enumerate() {
            let (b, want_g) = if j % 3 == 2 { (2, fixed) } else { (bank, gq) };
            g.x_in.next = twos::<A>(x);
            g.sel.next = Bits::<NB>::from(1 << b);
            clock_cycle(&mut g, |u| &mut u.clock);
            assert_eq!(signed_value(g.lane_out.val()), lane_value(&cfg, x, want_g), "{cfg}: x={x} g={want_g} bank {b}");
        }
    }
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

/// Push words through an h scaler with random output back-pressure; words must
/// come out in order, each once, equal to `scale_output`.
fn hscaler_stream<const ACC: usize, const H: usize, const O: usize>(
    cfg: &ArrayConfig,
    words: &[(i64, i64)],
    seed: u64,
) {
    let mut hs = HScaler::<ACC, H, O>::new(cfg);
    hs.connect_all();
    let mut rng = SplitMix64(seed);
    let (mut next, mut got) = (0usize, vec![]);
    let mut cycles = 0;
    while got.len() < words.len() {
        cycles += 1;
        assert!(cycles < 100 * words.len() + 100, "h scaler stalled");
        let o_ready = rng.next_u64() % 3 != 0;
        settle(&mut hs);
        let advance = !hs.valid_out.val() || o_ready;
        let offer = next < words.len() && rng.next_u64() % 4 != 0;
        hs.reset.next = false;
        hs.enable.next = advance;
        hs.valid_in.next = advance && offer;
        if offer {
            hs.acc_in.next = twos::<ACC>(words[next].0);
            hs.h_in.next = twos::<H>(words[next].1);
        }
        settle(&mut hs);
        if hs.valid_out.val() && o_ready {
            got.push(signed_value(hs.word_out.val()));
        }
        if advance && offer {
            next += 1;
        }
        clock_cycle(&mut hs, |u| &mut u.clock);
    }
    let want: Vec<i64> = words.iter().map(|&(a, h)| scale_output(cfg, a, h)).collect();
    assert_eq!(got, want, "{cfg}");
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]
    /// One column's accumulator across K tiles in one bank while the other
    /// bank is drained: runs of M tokens, the first overwriting, later ones
    /// adding, bubbles (or none: consecutive tiles back to back, where the
    /// write must be forwarded), and the other bank's words read at the same
    /// time; then every token of the accumulating bank drained.
    #[test]
    fn accumulator_adds_across_k_tiles_beside_a_drain(seed: u64, m in 1usize..8, tiles in 1usize..5, bank: bool) {
        const P: usize = 14;
        const ACC: usize = 20;
        const AD: usize = 3;
        let mut acc = OutputAccumulator::<P, ACC, AD>::default();
        acc.connect_all();
        let mut rng = SplitMix64(seed);
        let pmax = ArrayConfig::sym_max(P as u32);
        // The other bank first holds known words (one run, no add).
        let other: Vec<i64> = (0..m).map(|t| t as i64 * 7 - 20).collect();
        for (t, &v) in other.iter().enumerate() {
            acc.valid_in.next = true;
            acc.first_in.next = t == 0;
            acc.acc_in.next = false;
            acc.bank_in.next = !bank;
            acc.psum_in.next = twos::<P>(v);
            clock_cycle(&mut acc, |u| &mut u.clock);
        }
        // Its last word is written two edges later.
        acc.valid_in.next = false;
        clock_cycle(&mut acc, |u| &mut u.clock);
        clock_cycle(&mut acc, |u| &mut u.clock);
        let mut model = vec![0i64; m];
        let mut drained = vec![];
        let mut read = 0usize;
        for tile in 0..tiles {
            let mut t = 0;
            while t < m {
                let bubble = rng.next_u64() % 3 == 0;
                let v = if rng.next_u64() % 4 == 0 { -pmax } else { rng.range_i64(-pmax, pmax) };
                acc.valid_in.next = !bubble;
                acc.first_in.next = !bubble && t == 0;
                acc.acc_in.next = tile > 0;
                acc.bank_in.next = bank;
                acc.psum_in.next = twos::<P>(v);
                // Meanwhile the drain reads the other bank.
                acc.drain_rd.next = true;
                acc.drain_bank.next = !bank;
                acc.drain_addr.next = twos::<AD>((read % m) as i64);
                if !bubble {
                    model[t] = if tile > 0 { model[t] + v } else { v };
                    t += 1;
                }
                clock_cycle(&mut acc, |u| &mut u.clock);
                drained.push(signed_value(acc.acc_out.val()));
                read += 1;
            }
        }
        acc.valid_in.next = false;
        acc.first_in.next = false;
        acc.drain_rd.next = false;
        clock_cycle(&mut acc, |u| &mut u.clock);
        clock_cycle(&mut acc, |u| &mut u.clock);
        acc.drain_rd.next = true;
        for (i, &v) in drained.iter().enumerate() {
            prop_assert_eq!(v, other[i % m], "other bank, read {}", i);
        }
        acc.drain_bank.next = bank;
        for (t, &want) in model.iter().enumerate() {
            acc.drain_addr.next = twos::<AD>(t as i64);
            clock_cycle(&mut acc, |u| &mut u.clock);
            prop_assert_eq!(signed_value(acc.acc_out.val()), want, "token {}", t);
        }
    }
}
