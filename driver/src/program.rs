//! Compile a quantised layer and its activations into a [`Program`]: the
//! command list and the beats of every input stream, tiled as the array needs
//! (N by C, tokens by acc_depth, K by R), and turn the drained beats back into
//! the M×N output.
//!
//! Order: for each N tile, for each group of at most acc_depth tokens: one
//! TILE per K tile (acc = k0 > 0), then one DRAIN. The accelerator overlaps
//! all of it (docs/hardware.md): it loads the next tiles' weights while a
//! tile runs, and drains one group while the next accumulates. Lanes past K
//! and columns past N are padded (zero activations, zero sign bits, g = 0,
//! h = 0) and their outputs dropped.
//!
//! Every command keeps a [`Step`]: where it sits in the layer and which beats
//! of each stream it owns, so that a device that stops can be reported by
//! tile and phase.

use ndarray::{Array2, ArrayView2};
use onebit_core::pack::sign_bit;
use onebit_core::reference::ReferenceError;
use onebit_core::wire::{self, Command, Opcode};
use onebit_core::{ArrayConfig, QuantizedLayer};
use std::ops::Range;

/// Problems compiling a layer or assembling its output.
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
    #[error("received {got} output beats, the program expects {want}")]
    OutputCount { want: usize, got: usize },
    #[error("output beat {beat} has {got} words of 32 bits, an output beat has {want}")]
    OutputWidth { beat: usize, want: usize, got: usize },
}

/// Where one drained word goes: output (token, column), or nowhere (padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub token: usize,
    pub column: usize,
}

/// Which part of a command a device is in (the phases of docs/hardware.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A TILE's scale beat (g).
    LoadG,
    /// A TILE's weight beats.
    LoadW,
    /// A TILE's activation beats.
    Run,
    /// A DRAIN: its scale beat (h) and its output beats.
    Drain,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::LoadG => "LOAD_G",
            Phase::LoadW => "LOAD_W",
            Phase::Run => "RUN",
            Phase::Drain => "DRAIN",
        })
    }
}

/// One command of a program, where it sits in the layer, and the beats it
/// owns in each stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub opcode: Opcode,
    /// Index among the program's TILEs (for a DRAIN: among its DRAINs).
    pub index: usize,
    /// First output column, first input row (TILE only) and the tokens.
    pub n0: usize,
    pub k0: usize,
    pub tokens: Range<usize>,
    pub scales: Range<usize>,
    pub weights: Range<usize>,
    pub activations: Range<usize>,
    pub outputs: Range<usize>,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.opcode {
            Opcode::Tile => write!(
                f,
                "tile {} (outputs {}.., inputs {}.., tokens {}..{})",
                self.index, self.n0, self.k0, self.tokens.start, self.tokens.end
            ),
            Opcode::Drain => write!(
                f,
                "drain {} (outputs {}.., tokens {}..{})",
                self.index, self.n0, self.tokens.start, self.tokens.end
            ),
        }
    }
}

/// Everything one layer sends to and expects from the device.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub config: ArrayConfig,
    pub commands: Vec<u32>,
    /// One entry per command.
    pub steps: Vec<Step>,
    /// Weight beats, each `words_for(weight_beat_bits)` words.
    pub weight_beats: Vec<Vec<u32>>,
    /// Scale beats (a TILE's g, a DRAIN's h), each `words_for(scale_beat_bits)` words.
    pub scale_beats: Vec<Vec<u32>>,
    /// Activation beats, each `words_for(rows·act_bits)` words.
    pub activation_beats: Vec<Vec<u32>>,
    /// Output beats the device will emit.
    pub output_beats: usize,
    /// One entry per output word, in emission order (beat by beat).
    pub output_slots: Vec<Option<Slot>>,
    pub tokens: usize,
    pub in_features: usize,
    pub outputs: usize,
}

/// The sign bits of the tile at (n0, k0) as weight beats (padding is 0).
pub fn weight_tile_beats(cfg: &ArrayConfig, layer: &QuantizedLayer, n0: usize, k0: usize) -> Vec<Vec<u32>> {
    let (k, n) = (layer.in_features, layer.out_features);
    wire::weight_tile_beats(cfg, |r, c| n0 + c < n && k0 + r < k && sign_bit(&layer.signs, k, n0 + c, k0 + r) == 1)
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
            steps: vec![],
            weight_beats: vec![],
            scale_beats: vec![],
            activation_beats: vec![],
            output_beats: 0,
            output_slots: vec![],
            tokens: m,
            in_features: k,
            outputs: n,
        };
        let (mut tiles, mut drains) = (0, 0);
        for n0 in (0..n).step_by(cols) {
            for m0 in (0..m).step_by(cfg.acc_depth) {
                let mr = cfg.acc_depth.min(m - m0);
                for k0 in (0..k).step_by(rows) {
                    let step = Step {
                        opcode: Opcode::Tile,
                        index: tiles,
                        n0,
                        k0,
                        tokens: m0..m0 + mr,
                        scales: p.scale_beats.len()..p.scale_beats.len() + 1,
                        weights: p.weight_beats.len()..p.weight_beats.len() + cfg.beats_per_tile(),
                        activations: p.activation_beats.len()..p.activation_beats.len() + mr,
                        outputs: p.output_beats..p.output_beats,
                    };
                    tiles += 1;
                    p.commands.push(Command::tile(mr as u16, k0 > 0).encode());
                    p.steps.push(step);
                    let g: Vec<i32> = (0..rows).map(|r| if k0 + r < k { layer.g.q[k0 + r] } else { 0 }).collect();
                    p.scale_beats.push(wire::pack_g_beat(&cfg, &g));
                    p.weight_beats.extend(weight_tile_beats(&cfg, layer, n0, k0));
                    for t in m0..m0 + mr {
                        let xs: Vec<i32> = (0..rows).map(|r| if k0 + r < k { xq[[t, k0 + r]] } else { 0 }).collect();
                        p.activation_beats.push(wire::pack_activations(&cfg, &xs));
                    }
                }
                let beats = mr * cfg.out_beats_per_token();
                p.steps.push(Step {
                    opcode: Opcode::Drain,
                    index: drains,
                    n0,
                    k0: 0,
                    tokens: m0..m0 + mr,
                    scales: p.scale_beats.len()..p.scale_beats.len() + 1,
                    weights: p.weight_beats.len()..p.weight_beats.len(),
                    activations: p.activation_beats.len()..p.activation_beats.len(),
                    outputs: p.output_beats..p.output_beats + beats,
                });
                drains += 1;
                p.commands.push(Command::drain(mr as u16).encode());
                let h: Vec<i32> = (0..cols).map(|c| if n0 + c < n { layer.h.q[n0 + c] } else { 0 }).collect();
                p.scale_beats.push(wire::pack_h_beat(&cfg, &h));
                p.output_beats += beats;
                for t in m0..m0 + mr {
                    for c in 0..cols {
                        p.output_slots.push((n0 + c < n).then_some(Slot { token: t, column: n0 + c }));
                    }
                }
            }
        }
        Ok(p)
    }

    /// Cycles an array that only computes would need: Σ tokens over TILEs,
    /// i.e. ceil(K/R)·ceil(N/C)·M.
    pub fn compute_bound(&self) -> u64 {
        (self.in_features.div_ceil(self.config.rows) * self.outputs.div_ceil(self.config.cols) * self.tokens) as u64
    }

    /// Cycles the weight stream needs for the layer's K·N sign bits at
    /// weight_beat_bits per cycle.
    pub fn weight_stream_bound(&self) -> u64 {
        (self.in_features * self.outputs).div_ceil(self.config.weight_beat_bits as usize) as u64
    }

    /// The larger of the two bounds: no schedule can beat it.
    pub fn binding_bound(&self) -> u64 {
        self.compute_bound().max(self.weight_stream_bound())
    }

    /// The command an output beat belongs to.
    pub fn drain_of_output(&self, beat: usize) -> Option<usize> {
        self.steps.iter().position(|s| s.outputs.contains(&beat))
    }

    /// Turn the output beats into the M×N output.
    pub fn assemble(&self, beats: &[Vec<u32>]) -> Result<Array2<i64>, ProgramError> {
        if beats.len() != self.output_beats {
            return Err(ProgramError::OutputCount {
                want: self.output_beats,
                got: beats.len(),
            });
        }
        let want = wire::words_for(self.config.out_beat_bits());
        let mut out = Array2::<i64>::zeros((self.tokens, self.outputs));
        let ow = self.config.out_words_per_beat;
        for (b, beat) in beats.iter().enumerate() {
            if beat.len() != want {
                return Err(ProgramError::OutputWidth { beat: b, want, got: beat.len() });
            }
            for (j, v) in wire::unpack_output_beat(&self.config, beat).into_iter().enumerate() {
                if let Some(s) = self.output_slots[b * ow + j] {
                    out[[s.token, s.column]] = v;
                }
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

    fn small(rows: usize, cols: usize, wb: u32, depth: usize, ow: usize) -> ArrayConfig {
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
            weight_banks: 3,
            out_words_per_beat: ow,
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
        /// Every output (token, column) is produced exactly once, padding
        /// slots are exactly the columns past N, and every command's steps
        /// own exactly the beats it takes.
        #[test]
        fn tiling_covers_every_output_once(k in 1usize..40, n in 1usize..20, m in 1usize..12,
                                           rows in 1usize..6, cols in 1usize..6, depth in 1usize..5, ow_pick in 0usize..3) {
            let ow = [1, cols, if cols % 2 == 0 { 2 } else { 1 }][ow_pick];
            let cfg = small(rows, cols, 1, depth, ow);
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
            prop_assert_eq!(p.output_slots.len(), p.output_beats * ow);
            let tiles = n.div_ceil(cols) * m.div_ceil(depth) * k.div_ceil(rows);
            prop_assert_eq!(p.weight_beats.len(), tiles * cfg.beats_per_tile());
            prop_assert_eq!(p.activation_beats.len(), n.div_ceil(cols) * k.div_ceil(rows) * m);
            prop_assert_eq!(p.compute_bound() as usize, p.activation_beats.len());
            prop_assert_eq!(p.steps.len(), p.commands.len());
            // Commands decode, ask for exactly the beats their steps own, and
            // the steps tile every stream without gaps.
            let (mut s, mut w, mut x, mut o) = (0, 0, 0, 0);
            for (&c, step) in p.commands.iter().zip(&p.steps) {
                let c = Command::decode(c).unwrap();
                prop_assert_eq!(c.opcode, step.opcode);
                prop_assert_eq!(step.scales.clone(), s..s + c.scale_beats());
                prop_assert_eq!(step.weights.clone(), w..w + c.weight_beats(&cfg));
                prop_assert_eq!(step.activations.clone(), x..x + c.activation_beats());
                prop_assert_eq!(step.outputs.clone(), o..o + c.output_beats(&cfg));
                s += c.scale_beats();
                w += c.weight_beats(&cfg);
                x += c.activation_beats();
                o += c.output_beats(&cfg);
            }
            prop_assert_eq!(s, p.scale_beats.len());
            prop_assert_eq!(w, p.weight_beats.len());
            prop_assert_eq!(x, p.activation_beats.len());
            prop_assert_eq!(o, p.output_beats);
        }
    }

    /// Column c of a tile is a contiguous LSB-first slice of packed row n0 + c,
    /// so the stream bits equal the official packing bit for bit.
    #[test]
    fn weight_beats_follow_official_packing() {
        for (rows, cols, wb) in [(16, 16, 16), (8, 8, 8), (4, 3, 4), (4, 3, 12), (5, 2, 1), (4, 4, 16)] {
            let cfg = small(rows, cols, wb, 4, 1);
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
    fn bounds_of_a_layer() {
        let cfg = small(4, 4, 8, 4, 4);
        let p = Program::compile(&cfg, &layer(10, 5, 1), Array2::zeros((3, 10)).view()).unwrap();
        assert_eq!(p.compute_bound(), 3 * 2 * 3);
        assert_eq!(p.weight_stream_bound(), 50usize.div_ceil(8) as u64);
        assert_eq!(p.binding_bound(), 18);
        assert_eq!(p.drain_of_output(0), Some(p.steps.iter().position(|s| s.opcode == Opcode::Drain).unwrap()));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let cfg = small(4, 4, 4, 4, 1);
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
        assert!(matches!(p.assemble(&vec![vec![0]; 3]), Err(ProgramError::OutputCount { .. })));
        let beats = vec![vec![0u32; 5]; p.output_beats];
        assert!(matches!(p.assemble(&beats), Err(ProgramError::OutputWidth { .. })));
    }
}
