//! One cycle-level driver for every device model: it runs a [`Program`] over
//! anything implementing [`DevicePorts`] (rust-hdl's simulator in the hdl
//! tests, Verilator in sim/), with optional seeded random stalls on every
//! stream, producer side (valid gaps) and consumer side (`o_ready` low), and a
//! cycle limit that turns a hang into an error.
//!
//! Each cycle: the driver decides what to present, sets the inputs, lets the
//! device settle ([`DevicePorts::eval`]), samples the handshakes (valid and
//! ready both high), reads the output word if one is taken, and clocks the
//! device ([`DevicePorts::tick`]). A presented beat stays presented until it is
//! taken, as the valid/ready rule requires.

use crate::program::{Program, ProgramError};
use ndarray::Array2;
use onebit_core::synth::SplitMix64;

/// The accelerator's ports as seen from the host, one clock.
pub trait DevicePorts {
    fn set_cmd(&mut self, valid: bool, data: u32);
    fn set_weight(&mut self, valid: bool, data: &[u32]);
    fn set_scale(&mut self, valid: bool, data: u16);
    fn set_activation(&mut self, valid: bool, data: &[u32]);
    fn set_out_ready(&mut self, ready: bool);
    /// Settle the combinational logic after inputs changed.
    fn eval(&mut self);
    fn cmd_ready(&self) -> bool;
    fn weight_ready(&self) -> bool;
    fn scale_ready(&self) -> bool;
    fn activation_ready(&self) -> bool;
    fn out_valid(&self) -> bool;
    /// The output word (low out_bits significant).
    fn out_data(&self) -> u64;
    /// One rising clock edge, then settle.
    fn tick(&mut self);
}

/// Random back-pressure: each cycle an idle producer starts presenting only
/// with probability 1 − `stall`, and the consumer is ready with probability
/// 1 − `stall`. Seeded, so a failing run repeats exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StallPolicy {
    pub seed: u64,
    /// Probability in [0, 1) that a stream stalls in a given cycle.
    pub stall: f32,
}

/// Counts from one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunStats {
    pub cycles: u64,
    /// Σ M over RUN commands: cycles of a compute-bound array.
    pub ideal_cycles: u64,
}

impl RunStats {
    /// ideal / actual cycles.
    pub fn utilisation(&self) -> f64 {
        if self.cycles == 0 {
            0.0
        } else {
            self.ideal_cycles as f64 / self.cycles as f64
        }
    }
}

/// Problems running a program.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error(
        "no progress after {cycles} cycles (limit {limit}): sent {cmds}/{cmds_total} commands, \
         {w}/{w_total} weight, {s}/{s_total} scale, {x}/{x_total} activation beats, received {o}/{o_total} words"
    )]
    Timeout {
        cycles: u64,
        limit: u64,
        cmds: usize,
        cmds_total: usize,
        w: usize,
        w_total: usize,
        s: usize,
        s_total: usize,
        x: usize,
        x_total: usize,
        o: usize,
        o_total: usize,
    },
    #[error(transparent)]
    Program(#[from] ProgramError),
}

/// A stream of beats being fed to the device.
struct Feed<'a, T> {
    beats: &'a [T],
    next: usize,
    presenting: bool,
}

impl<'a, T> Feed<'a, T> {
    fn new(beats: &'a [T]) -> Self {
        Feed {
            beats,
            next: 0,
            presenting: false,
        }
    }
    /// Decide whether to present this cycle (never withdraw a presented beat).
    fn decide(&mut self, stall: &mut impl FnMut() -> bool) -> Option<&'a T> {
        if self.next >= self.beats.len() {
            self.presenting = false;
            return None;
        }
        if !self.presenting {
            self.presenting = !stall();
        }
        self.presenting.then(|| &self.beats[self.next])
    }
    fn taken(&mut self) {
        self.next += 1;
        self.presenting = false;
    }
    fn done(&self) -> bool {
        self.next >= self.beats.len()
    }
}

/// Run `program` on `dev`; returns the raw drained words and the cycle counts.
/// `limit` bounds the total cycles.
pub fn run_words(
    dev: &mut impl DevicePorts,
    program: &Program,
    stalls: Option<StallPolicy>,
    limit: u64,
) -> Result<(Vec<u64>, RunStats), RunError> {
    let mut rng = SplitMix64(stalls.map_or(0, |s| s.seed));
    let p_stall = stalls.map_or(0.0, |s| s.stall);
    let mut stall = move || p_stall > 0.0 && rng.unit() < p_stall;
    let mut cmds = Feed::new(&program.commands);
    let mut weights = Feed::new(&program.weight_beats);
    let mut scales = Feed::new(&program.scale_beats);
    let mut acts = Feed::new(&program.activation_beats);
    let want = program.output_slots.len();
    let mut words = Vec::with_capacity(want);
    let zero_w = vec![0u32; crate::wire::words_for(program.config.weight_beat_bits as usize)];
    let zero_x = vec![0u32; crate::wire::words_for(program.config.rows * program.config.act_bits as usize)];
    let mut cycles = 0u64;
    while !(cmds.done() && weights.done() && scales.done() && acts.done() && words.len() == want) {
        if cycles >= limit {
            return Err(RunError::Timeout {
                cycles,
                limit,
                cmds: cmds.next,
                cmds_total: program.commands.len(),
                w: weights.next,
                w_total: program.weight_beats.len(),
                s: scales.next,
                s_total: program.scale_beats.len(),
                x: acts.next,
                x_total: program.activation_beats.len(),
                o: words.len(),
                o_total: want,
            });
        }
        let c = cmds.decide(&mut stall).copied();
        dev.set_cmd(c.is_some(), c.unwrap_or(0));
        let w = weights.decide(&mut stall);
        dev.set_weight(w.is_some(), w.map_or(&zero_w[..], |v| &v[..]));
        let s = scales.decide(&mut stall).copied();
        dev.set_scale(s.is_some(), s.unwrap_or(0));
        let x = acts.decide(&mut stall);
        dev.set_activation(x.is_some(), x.map_or(&zero_x[..], |v| &v[..]));
        let o_ready = !stall();
        dev.set_out_ready(o_ready);
        dev.eval();
        if c.is_some() && dev.cmd_ready() {
            cmds.taken();
        }
        if w.is_some() && dev.weight_ready() {
            weights.taken();
        }
        if s.is_some() && dev.scale_ready() {
            scales.taken();
        }
        if x.is_some() && dev.activation_ready() {
            acts.taken();
        }
        if o_ready && dev.out_valid() {
            words.push(dev.out_data());
        }
        dev.tick();
        cycles += 1;
    }
    dev.set_cmd(false, 0);
    dev.set_weight(false, &zero_w);
    dev.set_scale(false, 0);
    dev.set_activation(false, &zero_x);
    dev.eval();
    Ok((
        words,
        RunStats {
            cycles,
            ideal_cycles: program.ideal_cycles,
        },
    ))
}

/// Run `program` on `dev` and assemble the M×N output.
pub fn run(
    dev: &mut impl DevicePorts,
    program: &Program,
    stalls: Option<StallPolicy>,
    limit: u64,
) -> Result<(Array2<i64>, RunStats), RunError> {
    let (words, stats) = run_words(dev, program, stalls, limit)?;
    Ok((program.assemble(&words)?, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use onebit_core::ArrayConfig;

    /// A device that never becomes ready: the cycle limit must turn the hang
    /// into an error naming what was left.
    struct Stuck;
    impl DevicePorts for Stuck {
        fn set_cmd(&mut self, _: bool, _: u32) {}
        fn set_weight(&mut self, _: bool, _: &[u32]) {}
        fn set_scale(&mut self, _: bool, _: u16) {}
        fn set_activation(&mut self, _: bool, _: &[u32]) {}
        fn set_out_ready(&mut self, _: bool) {}
        fn eval(&mut self) {}
        fn cmd_ready(&self) -> bool {
            false
        }
        fn weight_ready(&self) -> bool {
            false
        }
        fn scale_ready(&self) -> bool {
            false
        }
        fn activation_ready(&self) -> bool {
            false
        }
        fn out_valid(&self) -> bool {
            false
        }
        fn out_data(&self) -> u64 {
            0
        }
        fn tick(&mut self) {}
    }

    #[test]
    fn hang_becomes_timeout_error() {
        let cfg = ArrayConfig::ICE40;
        let mut rng = SplitMix64(3);
        let layer = onebit_core::synth::random_layer(&mut rng, 9, 3).quantize(&cfg).unwrap();
        let p = Program::compile(&cfg, &layer, Array2::<i32>::zeros((2, 9)).view()).unwrap();
        let e = run(&mut Stuck, &p, Some(StallPolicy { seed: 1, stall: 0.5 }), 100).unwrap_err();
        assert!(
            matches!(
                e,
                RunError::Timeout {
                    cycles: 100,
                    cmds: 0,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("0/"), "{e}");
    }
}
