//! Compile a quantised layer and its activations into a [`Program`]: the
//! command list and the beats of every input stream, tiled as the array needs
//! (N by C, K by R, tokens by acc_depth), and turn the drained words back into
//! the M×N output.
//!
//! Order: for each N tile, for each run of at most acc_depth tokens: for each K
//! tile LOAD_G, LOAD_W, RUN(acc = k0 > 0); then LOAD_H, DRAIN. Lanes past K and
//! columns past N are padded (zero activations, zero sign bits, g = 0, h = 0)
//! and their outputs dropped.

use crate::wire::{self, Command, Opcode};
use ndarray::{Array2, ArrayView2};
use onebit_core::pack::sign_bit;
use onebit_core::reference::ReferenceError;
use onebit_core::{ArrayConfig, QuantizedLayer};

/// Problems compiling a layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProgramError {
    #[error(transparent)]
    Layer(#[from] ReferenceError),
    #[error("activations have K = {got}, the layer expects K = {want}")]
    Shape { want: usize, got: usize },
    #[error("x_q[{token}][{input}] = {value} is outside the {bits}-bit activation range")]
    Activation {
        token: usize,
        input: usize,
        value: i32,
        bits: u32,
    },
    #[error("no tokens to run (M = 0)")]
    Empty,
    #[error("drained {got} words, the program expects {want}")]
    OutputCount { want: usize, got: usize },
}

/// Where one drained word goes: output (token, column), or nowhere (padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub token: usize,
    pub column: usize,
}

/// Everything one layer sends to and expects from the device.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub config: ArrayConfig,
    pub commands: Vec<u32>,
    /// Weight beats, each `words_for(weight_beat_bits)` words.
    pub weight_beats: Vec<Vec<u32>>,
    /// Scale beats (g_q and h_q in command order).
    pub scale_beats: Vec<u16>,
    /// Activation beats, each `words_for(rows·act_bits)` words.
    pub activation_beats: Vec<Vec<u32>>,
    /// One entry per output word the device will emit, in order.
    pub output_slots: Vec<Option<Slot>>,
    pub tokens: usize,
    pub outputs: usize,
    /// Σ M over RUN commands: the cycles a compute-bound array would need.
    pub ideal_cycles: u64,
}

/// The sign bits of the tile at (n0, k0) in stream order: column c's R bits,
/// row 0 first, then column c+1; padding is 0. Split into beats of WB bits.
pub fn weight_tile_beats(cfg: &ArrayConfig, layer: &QuantizedLayer, n0: usize, k0: usize) -> Vec<Vec<u32>> {
    let (r_, c_, wb) = (cfg.rows, cfg.cols, cfg.weight_beat_bits as usize);
    let (k, n) = (layer.in_features, layer.out_features);
    let mut beats = vec![vec![0u32; wire::words_for(wb)]; cfg.beats_per_tile()];
    for c in 0..c_ {
        for r in 0..r_ {
            let i = c * r_ + r;
            let bit = n0 + c < n && k0 + r < k && sign_bit(&layer.signs, k, n0 + c, k0 + r) == 1;
            wire::set_bit(&mut beats[i / wb], i % wb, bit);
        }
    }
    beats
}

impl Program {
    /// Compile `layer` applied to the M×K activations `xq`.
    pub fn compile(cfg: &ArrayConfig, layer: &QuantizedLayer, xq: ArrayView2<i32>) -> Result<Program, ProgramError> {
        let cfg = cfg.validate().map_err(|e| ReferenceError::Shape {
            what: "array configuration".into(),
            expected: "a valid configuration".into(),
            got: e.to_string(),
        })?;
        layer.validate(&cfg)?;
        let (m, k) = xq.dim();
        if k != layer.in_features {
            return Err(ProgramError::Shape {
                want: layer.in_features,
                got: k,
            });
        }
        if m == 0 {
            return Err(ProgramError::Empty);
        }
        let (lo, hi) = ArrayConfig::port_range(cfg.act_bits);
        for ((t, i), &v) in xq.indexed_iter() {
            if (v as i64) < lo || (v as i64) > hi {
                return Err(ProgramError::Activation {
                    token: t,
                    input: i,
                    value: v,
                    bits: cfg.act_bits,
                });
            }
        }
        let n = layer.out_features;
        let (rows, cols) = (cfg.rows, cfg.cols);
        let mut p = Program {
            config: cfg,
            commands: vec![],
            weight_beats: vec![],
            scale_beats: vec![],
            activation_beats: vec![],
            output_slots: vec![],
            tokens: m,
            outputs: n,
            ideal_cycles: 0,
        };
        // LOAD_* counts are informational (the hardware knows R, C and beats_per_tile).
        let cmd = |op, acc, count: usize| Command::new(op, acc, u16::try_from(count).unwrap_or(u16::MAX)).encode();
        for n0 in (0..n).step_by(cols) {
            for m0 in (0..m).step_by(cfg.acc_depth) {
                let mr = cfg.acc_depth.min(m - m0);
                for k0 in (0..k).step_by(rows) {
                    p.commands.push(cmd(Opcode::LoadG, false, rows));
                    for r in 0..rows {
                        let g = if k0 + r < k { layer.g.q[k0 + r] } else { 0 };
                        p.scale_beats.push(wire::pack_scale(g));
                    }
                    p.commands.push(cmd(Opcode::LoadW, false, cfg.beats_per_tile()));
                    p.weight_beats.extend(weight_tile_beats(&cfg, layer, n0, k0));
                    p.commands.push(cmd(Opcode::Run, k0 > 0, mr));
                    p.ideal_cycles += mr as u64;
                    for t in m0..m0 + mr {
                        let xs: Vec<i32> = (0..rows)
                            .map(|r| if k0 + r < k { xq[[t, k0 + r]] } else { 0 })
                            .collect();
                        p.activation_beats.push(wire::pack_activations(&cfg, &xs));
                    }
                }
                p.commands.push(cmd(Opcode::LoadH, false, cols));
                for c in 0..cols {
                    let h = if n0 + c < n { layer.h.q[n0 + c] } else { 0 };
                    p.scale_beats.push(wire::pack_scale(h));
                }
                p.commands.push(cmd(Opcode::Drain, false, mr));
                for t in m0..m0 + mr {
                    for c in 0..cols {
                        p.output_slots.push((n0 + c < n).then_some(Slot {
                            token: t,
                            column: n0 + c,
                        }));
                    }
                }
            }
        }
        Ok(p)
    }

    /// Turn the drained raw words (low out_bits significant) into the M×N output.
    pub fn assemble(&self, words: &[u64]) -> Result<Array2<i64>, ProgramError> {
        if words.len() != self.output_slots.len() {
            return Err(ProgramError::OutputCount {
                want: self.output_slots.len(),
                got: words.len(),
            });
        }
        let mut out = Array2::<i64>::zeros((self.tokens, self.outputs));
        for (slot, &w) in self.output_slots.iter().zip(words) {
            if let Some(s) = slot {
                out[[s.token, s.column]] = wire::sign_extend(w, self.config.out_bits);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onebit_core::numerics::FixedVector;
    use onebit_core::pack::pack_sign_values;
    use proptest::prelude::*;

    fn small(rows: usize, cols: usize, wb: u32, depth: usize) -> ArrayConfig {
        ArrayConfig {
            rows,
            cols,
            act_bits: 8,
            g_bits: 8,
            lane_bits: 12,
            h_bits: 16,
            out_bits: 20,
            weight_beat_bits: wb,
            max_k: 1024,
            acc_depth: depth,
        }
    }

    fn layer(k: usize, n: usize, seed: u64) -> QuantizedLayer {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 33) as i64
        };
        let signs: Vec<i8> = (0..n * k).map(|_| if next() % 2 == 0 { 1 } else { -1 }).collect();
        QuantizedLayer {
            in_features: k,
            out_features: n,
            signs: pack_sign_values(&signs, n, k),
            g: FixedVector {
                q: (0..k).map(|_| (next() % 255 - 127) as i32).collect(),
                frac: 0,
            },
            h: FixedVector {
                q: (0..n).map(|_| (next() % 60000 - 30000) as i32).collect(),
                frac: 0,
            },
        }
    }

    proptest! {
        /// Every output (token, column) is produced exactly once, and padding
        /// slots are exactly the columns past N.
        #[test]
        fn tiling_covers_every_output_once(k in 1usize..40, n in 1usize..20, m in 1usize..12,
                                           rows in 1usize..6, cols in 1usize..6, depth in 1usize..5) {
            let cfg = small(rows, cols, 1, depth);
            let l = layer(k, n, (k * 31 + n) as u64);
            let x = Array2::<i32>::zeros((m, k));
            let p = Program::compile(&cfg, &l, x.view()).unwrap();
            let mut seen = vec![0u32; m * n];
            let mut pads = 0;
            for s in &p.output_slots {
                match s {
                    Some(s) => seen[s.token * n + s.column] += 1,
                    None => pads += 1,
                }
            }
            prop_assert!(seen.iter().all(|&c| c == 1));
            prop_assert_eq!(pads, m * (n.div_ceil(cols) * cols - n));
            let runs = n.div_ceil(cols) * m.div_ceil(depth) * k.div_ceil(rows);
            prop_assert_eq!(p.weight_beats.len(), runs * cfg.beats_per_tile());
            prop_assert_eq!(p.activation_beats.len(), n.div_ceil(cols) * k.div_ceil(rows) * m);
            prop_assert_eq!(p.ideal_cycles as usize, p.activation_beats.len());
            // Commands decode, and the beats they ask for are the beats supplied.
            let (mut s_beats, mut w_beats, mut x_beats, mut o_words) = (0, 0, 0, 0);
            for &c in &p.commands {
                let c = Command::decode(c).unwrap();
                match c.opcode {
                    Opcode::LoadG => s_beats += rows,
                    Opcode::LoadH => s_beats += cols,
                    Opcode::LoadW => w_beats += cfg.beats_per_tile(),
                    Opcode::Run => x_beats += c.count as usize,
                    Opcode::Drain => o_words += c.count as usize * cols,
                }
            }
            prop_assert_eq!(s_beats, p.scale_beats.len());
            prop_assert_eq!(w_beats, p.weight_beats.len());
            prop_assert_eq!(x_beats, p.activation_beats.len());
            prop_assert_eq!(o_words, p.output_slots.len());
        }
    }

    /// Column c of a tile is a contiguous LSB-first slice of packed row n0 + c,
    /// so the stream bits equal the official packing bit for bit.
    #[test]
    fn weight_beats_follow_official_packing() {
        for (rows, cols, wb) in [(16, 16, 16), (8, 8, 8), (4, 3, 4), (4, 3, 12), (5, 2, 1)] {
            let cfg = small(rows, cols, wb, 4);
            let (k, n) = (rows * 3 - 1, cols * 2 + 1);
            let l = layer(k, n, 7);
            for n0 in (0..n).step_by(cols) {
                for k0 in (0..k).step_by(rows) {
                    let beats = weight_tile_beats(&cfg, &l, n0, k0);
                    let stream: Vec<bool> = (0..rows * cols)
                        .map(|i| wire::get_bit(&beats[i / wb as usize], i % wb as usize))
                        .collect();
                    for c in 0..cols {
                        for r in 0..rows {
                            let want = if n0 + c < n && k0 + r < k {
                                let byte = l.signs[(n0 + c) * k.div_ceil(8) + (k0 + r) / 8];
                                (byte >> ((k0 + r) % 8)) & 1 == 1
                            } else {
                                false
                            };
                            assert_eq!(stream[c * rows + r], want, "tile ({n0},{k0}) c {c} r {r}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let cfg = small(4, 4, 4, 4);
        let l = layer(10, 5, 1);
        assert!(matches!(
            Program::compile(&cfg, &l, Array2::zeros((2, 9)).view()),
            Err(ProgramError::Shape { .. })
        ));
        assert!(matches!(
            Program::compile(&cfg, &l, Array2::zeros((0, 10)).view()),
            Err(ProgramError::Empty)
        ));
        let mut x = Array2::zeros((1, 10));
        x[[0, 3]] = 128;
        assert!(matches!(
            Program::compile(&cfg, &l, x.view()),
            Err(ProgramError::Activation { .. })
        ));
        let p = Program::compile(&cfg, &l, Array2::zeros((1, 10)).view()).unwrap();
        assert!(p.assemble(&[0; 3]).is_err());
    }
}
