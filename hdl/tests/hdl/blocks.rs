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
    /// A PE against its definition, cycle by cycle, on random inputs: act and
    /// swap pass east one cycle later, psum_out = psum_in ± act_in (wrapping at
    /// P bits, which a real array never reaches), shadow loads on shift, the
    /// active sign takes the shadow when swap passes and is used at once.
    #[test]
    fn pe_matches_its_definition(ops in prop::collection::vec((any::<i16>(), any::<bool>(), any::<i16>(), any::<bool>(), any::<bool>()), 1..60)) {
        const L: usize = 12;
        const P: usize = 14;
        let mut pe = SignAccumulatePe::<L, P>::default();
        pe.connect_all();
        let (mut act, mut swap, mut psum, mut shadow, mut active) = (0i64, false, 0i64, false, false);
        for (a, s, p, sh_in, sh_shift) in ops {
            let a = wrap(a as i64, L);
            let p = wrap(p as i64, P);
            pe.act_in.next = twos::<L>(a);
            pe.swap_in.next = s;
            pe.psum_in.next = twos::<P>(p);
            pe.shadow_in.next = sh_in;
            pe.shadow_shift.next = sh_shift;
            settle(&mut pe);
            prop_assert_eq!(signed_value(pe.act_out.val()), act);
            prop_assert_eq!(pe.swap_out.val(), swap);
            prop_assert_eq!(signed_value(pe.psum_out.val()), psum);
            prop_assert_eq!(pe.shadow_out.val(), shadow);
            let subtract = if s { shadow } else { active };
            if s { active = shadow; }
            psum = wrap(if subtract { p - a } else { p + a }, P);
            act = a;
            swap = s;
            if sh_shift { shadow = sh_in; }
            clock_cycle(&mut pe, |u| &mut u.clock);
        }
    }
}

fn gscaler_sweep<const A: usize, const G: usize, const L: usize>(cfg: &ArrayConfig, gs: &[i64], xs: &[i64]) {
    let mut g = GScaler::<A, G, L>::new(cfg);
    g.connect_all();
    for &gq in gs {
        g.g_in.next = twos::<G>(gq);
        g.g_shift.next = true;
        clock_cycle(&mut g, |u| &mut u.clock);
        g.g_shift.next = false;
        assert_eq!(signed_value(g.g_out.val()), gq);
        // The first token after a LOAD_G swaps the new g in.
        for (i, &x) in xs.iter().enumerate() {
            g.x_in.next = twos::<A>(x);
            g.g_swap.next = i == 0;
            clock_cycle(&mut g, |u| &mut u.clock);
            assert_eq!(
                signed_value(g.lane_out.val()),
                lane_value(cfg, x, gq),
                "{cfg}: x={x} g={gq}"
            );
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

/// A 4×3 array alone: load a tile, run tokens through it while the next
/// tile loads into the shadow bits, run the second tile; every column sum
/// leaves the south edge with its tags, equal to Σ_r sign·lane.
#[test]
fn array_tile_sums_with_overlapped_load() {
    const R: usize = 4;
    const C: usize = 3;
    const L: usize = 12;
    const P: usize = 14;
    const WB: usize = 4;
    let mut arr = SystolicArray::<R, C, L, P, WB, { R * L }, { C * P }>::new();
    arr.connect_all();
    let mut rng = SplitMix64(42);
    let tiles: Vec<Vec<bool>> = (0..2)
        .map(|_| (0..R * C).map(|_| rng.next_u64() & 1 == 1).collect())
        .collect();
    let lmax = ArrayConfig::sym_max(L as u32);
    let tokens: Vec<Vec<i64>> = (0..12)
        .map(|t| {
            (0..R)
                .map(|_| if t % 5 == 0 { -lmax } else { rng.range_i64(-lmax, lmax) })
                .collect()
        })
        .collect();
    let beat = |tile: &Vec<bool>, b: usize| {
        let mut v = 0u64;
        for j in 0..WB {
            v |= (tile[b * WB + j] as u64) << j;
        }
        Bits::<WB>::from(v)
    };
    // Tile 0 into the shadow bits.
    for b in 0..R * C / WB {
        arr.shadow_beat.next = beat(&tiles[0], b);
        arr.shadow_shift.next = true;
        clock_cycle(&mut arr, |u| &mut u.clock);
    }
    arr.shadow_shift.next = false;
    // Tokens 0..6 use tile 0, 6..12 tile 1; tile 1's beats go in while tile
    // 0's tokens are still in the array, once the swap has passed every PE.
    let mut results: Vec<Vec<Option<i64>>> = vec![vec![None; C]; tokens.len()];
    let mut col_count = [0usize; C];
    let mut loaded = 0;
    for cycle in 0..60usize {
        // Tile 0's tokens at cycles 0..6, tile 1's at 10..16.
        let t = if cycle < 6 {
            cycle
        } else {
            cycle.saturating_sub(4).max(6)
        };
        let present = (cycle < 6 || cycle >= 10) && t < tokens.len();
        let mut lanes = Bits::<{ R * L }>::default();
        if present {
            for r in 0..R {
                lanes.set_bits::<L>(r * L, twos::<L>(tokens[t][r]));
            }
        }
        arr.west_lanes.next = lanes;
        arr.west_valid.next = present;
        arr.west_first.next = present && (t == 0 || t == 6);
        arr.west_acc.next = false;
        // Token 0's swap reaches the last PE in cycle R + C - 2; from that
        // cycle on the shadow chain may shift (the PE copies the old bit at
        // the same edge). Tile 1 loads in cycles 5, 6, 7 while tile 0's
        // tokens are still in the array.
        let load_now = cycle >= R + C - 2 && loaded < R * C / WB;
        arr.shadow_shift.next = load_now;
        if load_now {
            arr.shadow_beat.next = beat(&tiles[1], loaded);
            loaded += 1;
        }
        settle(&mut arr);
        for c in 0..C {
            if arr.south_valid.val().get_bit(c) {
                // Tokens 0 and 6 start their RUNs.
                assert_eq!(arr.south_first.val().get_bit(c), col_count[c] == 0 || col_count[c] == 6);
                let psum = signed_value(arr.south_psums.val().get_bits::<P>(c * P));
                results[col_count[c]][c] = Some(psum);
                col_count[c] += 1;
            }
        }
        clock_cycle(&mut arr, |u| &mut u.clock);
    }
    assert_eq!(loaded, R * C / WB, "the second tile must load while the first computes");
    for (t, tok) in tokens.iter().enumerate() {
        let tile = &tiles[if t < 6 { 0 } else { 1 }];
        for c in 0..C {
            let want: i64 = (0..R).map(|r| if tile[c * R + r] { -tok[r] } else { tok[r] }).sum();
            assert_eq!(results[t][c], Some(want), "token {t} column {c}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]
    /// One column's accumulator across K tiles: runs of M tokens, the first
    /// overwriting, later ones adding, bubbles between sums, then a drain read
    /// of every token.
    #[test]
    fn accumulator_adds_across_k_tiles(seed: u64, m in 1usize..8, tiles in 1usize..5) {
        const P: usize = 14;
        const ACC: usize = 20;
        const AD: usize = 3;
        let mut acc = OutputAccumulator::<P, ACC, AD>::default();
        acc.connect_all();
        let mut rng = SplitMix64(seed);
        let pmax = ArrayConfig::sym_max(P as u32);
        let mut model = vec![0i64; m];
        for tile in 0..tiles {
            let mut t = 0;
            while t < m {
                let bubble = rng.next_u64() % 3 == 0;
                let v = if rng.next_u64() % 4 == 0 { -pmax } else { rng.range_i64(-pmax, pmax) };
                acc.valid_in.next = !bubble;
                acc.first_in.next = !bubble && t == 0;
                acc.acc_in.next = tile > 0;
                acc.psum_in.next = twos::<P>(v);
                if !bubble {
                    model[t] = if tile > 0 { model[t] + v } else { v };
                    t += 1;
                }
                clock_cycle(&mut acc, |u| &mut u.clock);
            }
            acc.valid_in.next = false;
            acc.first_in.next = false;
            // Runs are at least two cycles apart (a command fetch between).
            clock_cycle(&mut acc, |u| &mut u.clock);
        }
        clock_cycle(&mut acc, |u| &mut u.clock);
        acc.drain.next = true;
        for (t, &want) in model.iter().enumerate() {
            acc.drain_addr.next = twos::<AD>(t as i64);
            clock_cycle(&mut acc, |u| &mut u.clock);
            prop_assert_eq!(signed_value(acc.acc_out.val()), want, "token {}", t);
        }
    }
}
