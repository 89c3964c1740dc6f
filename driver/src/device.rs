//! The accelerator as the driver sees it, whatever carries its streams: the
//! transport-agnostic [`Device`] trait, the cycle-level adapter
//! [`PortDevice`] for anything with pins (Verilator, rust-hdl's simulator),
//! and [`run_layer`], which runs a [`Program`] on any device and turns every
//! way a device can fail into an error naming the layer, the tile and the
//! phase.

use crate::program::{Phase, Program, ProgramError, Step};
use ndarray::Array2;
use onebit_core::ports::DevicePorts;
use onebit_core::synth::SplitMix64;
use onebit_core::wire::{self, Opcode};
use onebit_core::ArrayConfig;

/// How long a device may go without moving a single beat on any stream
/// before the driver gives up on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// Clock cycles (simulators).
    IdleCycles(u64),
    /// Wall-clock time (boards).
    IdleTime(std::time::Duration),
}

impl Deadline {
    /// A generous idle limit for a configuration: far longer than any wait
    /// the accelerator has (a weight bank's hold, a drain's flush, a tile's
    /// load), even with random stalls on every stream.
    pub fn for_config(cfg: &ArrayConfig) -> Deadline {
        Deadline::IdleCycles(2000 + 50 * (cfg.rows + cfg.cols + cfg.beats_per_tile() + cfg.out_beats_per_token()) as u64)
    }
}

/// The beats of one program, in stream order.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub config: &'a ArrayConfig,
    pub commands: &'a [u32],
    pub weights: &'a [Vec<u32>],
    pub scales: &'a [Vec<u32>],
    pub activations: &'a [Vec<u32>],
    /// Output beats the device must produce.
    pub outputs: usize,
}

impl<'a> Job<'a> {
    pub fn of(program: &'a Program) -> Job<'a> {
        Job {
            config: &program.config,
            commands: &program.commands,
            weights: &program.weight_beats,
            scales: &program.scale_beats,
            activations: &program.activation_beats,
            outputs: program.output_beats,
        }
    }
}

/// How far each stream got: beats the device took, output beats it made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub commands: usize,
    pub weights: usize,
    pub scales: usize,
    pub activations: usize,
    pub outputs: usize,
    /// Clock cycles, where the device counts them.
    pub cycles: u64,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "taken: {} commands, {} weight, {} scale, {} activation beats; made {} output beats; {} cycles",
            self.commands, self.weights, self.scales, self.activations, self.outputs, self.cycles
        )
    }
}

/// A finished exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub outputs: Vec<Vec<u32>>,
    /// For each output beat, the commands the device had taken when it came.
    pub commands_before: Vec<usize>,
    pub progress: Progress,
}

/// What went wrong on the device side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("the device stopped: nothing moved for {idle}")]
    Stopped { idle: String, progress: Progress },
    #[error("the device made more output beats than the program asks for")]
    ExtraOutput { progress: Progress },
    #[error("the link failed: {message}")]
    Link { message: String, progress: Progress },
    #[error("the device cannot be reset: {0}")]
    NoReset(String),
}

impl Fault {
    pub fn progress(&self) -> Progress {
        match self {
            Fault::Stopped { progress, .. } | Fault::ExtraOutput { progress } | Fault::Link { progress, .. } => *progress,
            Fault::NoReset(_) => Progress::default(),
        }
    }
}

/// An accelerator, over whatever carries its five streams.
pub trait Device {
    fn config(&self) -> ArrayConfig;
    /// Send every beat of `job` and collect its output beats. Returns when all
    /// inputs are taken and all outputs received, or with a [`Fault`] when the
    /// device stops moving for longer than `deadline` or misbehaves.
    fn exchange(&mut self, job: &Job, deadline: Deadline) -> Result<Exchange, Fault>;
    /// Return the device to idle and empty, so it can be used again after a fault.
    fn reset(&mut self) -> Result<(), Fault>;
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

/// A stream of beats being fed to the device.
struct Feed<'a, T> {
    beats: &'a [T],
    next: usize,
    presenting: bool,
}

impl<'a, T> Feed<'a, T> {
    fn new(beats: &'a [T]) -> Self {
        Feed { beats, next: 0, presenting: false }
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

/// Any cycle-level model with pins as a [`Device`], clocked by the driver,
/// with optional random stalls on every stream.
pub struct PortDevice<D> {
    pub ports: D,
    pub config: ArrayConfig,
    pub stalls: Option<StallPolicy>,
    /// Rising edges so far.
    pub cycles: u64,
    rng: SplitMix64,
}

impl<D: DevicePorts> PortDevice<D> {
    pub fn new(ports: D, config: ArrayConfig) -> Self {
        PortDevice { ports, config, stalls: None, cycles: 0, rng: SplitMix64(0) }
    }
    pub fn with_stalls(mut self, stalls: Option<StallPolicy>) -> Self {
        self.set_stalls(stalls);
        self
    }
    pub fn set_stalls(&mut self, stalls: Option<StallPolicy>) {
        self.stalls = stalls;
        self.rng = SplitMix64(stalls.map_or(0, |s| s.seed));
    }
}

impl<D: DevicePorts> Device for PortDevice<D> {
    fn config(&self) -> ArrayConfig {
        self.config
    }

    fn exchange(&mut self, job: &Job, deadline: Deadline) -> Result<Exchange, Fault> {
        let idle_limit = match deadline {
            Deadline::IdleCycles(n) => n,
            Deadline::IdleTime(_) => u64::MAX,
        };
        let started = std::time::Instant::now();
        let p_stall = self.stalls.map_or(0.0, |s| s.stall);
        let rng = &mut self.rng;
        let mut stall = move || p_stall > 0.0 && rng.unit() < p_stall;
        let dev = &mut self.ports;
        let mut cmds = Feed::new(job.commands);
        let mut weights = Feed::new(job.weights);
        let mut scales = Feed::new(job.scales);
        let mut acts = Feed::new(job.activations);
        let zero = |bits: usize| vec![0u32; wire::words_for(bits)];
        let (zero_w, zero_s, zero_x) = (
            zero(job.config.weight_beat_bits as usize),
            zero(job.config.scale_beat_bits()),
            zero(job.config.activation_beat_bits()),
        );
        let mut outputs = Vec::with_capacity(job.outputs);
        let mut commands_before = Vec::with_capacity(job.outputs);
        let (start_cycles, mut idle) = (self.cycles, 0u64);
        let progress = |cmds: &Feed<u32>, w: &Feed<Vec<u32>>, s: &Feed<Vec<u32>>, x: &Feed<Vec<u32>>, o: usize, c: u64| Progress {
            commands: cmds.next,
            weights: w.next,
            scales: s.next,
            activations: x.next,
            outputs: o,
            cycles: c,
        };
        dev.set_reset(false);
        // Outputs that depend on registers only were settled by the last
        // tick (or here, once); otherwise settle the inputs every cycle.
        let settle = !dev.outputs_registered();
        if !settle {
            dev.eval();
        }
        while !(cmds.done() && weights.done() && scales.done() && acts.done() && outputs.len() >= job.outputs) {
            let timed_out = match deadline {
                Deadline::IdleCycles(_) => idle >= idle_limit,
                Deadline::IdleTime(t) => idle > 0 && idle % 1024 == 0 && started.elapsed() > t,
            };
            if timed_out {
                return Err(Fault::Stopped {
                    idle: match deadline {
                        Deadline::IdleCycles(n) => format!("{n} cycles"),
                        Deadline::IdleTime(t) => format!("{t:?}"),
                    },
                    progress: progress(&cmds, &weights, &scales, &acts, outputs.len(), self.cycles - start_cycles),
                });
            }
            let c = cmds.decide(&mut stall).copied();
            dev.set_cmd(c.is_some(), c.unwrap_or(0));
            let w = weights.decide(&mut stall);
            dev.set_weight(w.is_some(), w.map_or(&zero_w[..], |v| &v[..]));
            let s = scales.decide(&mut stall);
            dev.set_scale(s.is_some(), s.map_or(&zero_s[..], |v| &v[..]));
            let x = acts.decide(&mut stall);
            dev.set_activation(x.is_some(), x.map_or(&zero_x[..], |v| &v[..]));
            let o_ready = !stall();
            dev.set_out_ready(o_ready);
            if settle {
                dev.eval();
            }
            let mut moved = false;
            if c.is_some() && dev.cmd_ready() {
                cmds.taken();
                moved = true;
            }
            if w.is_some() && dev.weight_ready() {
                weights.taken();
                moved = true;
            }
            if s.is_some() && dev.scale_ready() {
                scales.taken();
                moved = true;
            }
            if x.is_some() && dev.activation_ready() {
                acts.taken();
                moved = true;
            }
            if o_ready && dev.out_valid() {
                if outputs.len() == job.outputs {
                    return Err(Fault::ExtraOutput {
                        progress: progress(&cmds, &weights, &scales, &acts, outputs.len() + 1, self.cycles - start_cycles),
                    });
                }
                outputs.push(dev.out_data());
                commands_before.push(cmds.next);
                moved = true;
            }
            dev.tick();
            self.cycles += 1;
            idle = if moved { 0 } else { idle + 1 };
        }
        dev.set_cmd(false, 0);
        dev.set_weight(false, &zero_w);
        dev.set_scale(false, &zero_s);
        dev.set_activation(false, &zero_x);
        dev.set_out_ready(false);
        dev.eval();
        Ok(Exchange {
            progress: progress(&cmds, &weights, &scales, &acts, outputs.len(), self.cycles - start_cycles),
            outputs,
            commands_before,
        })
    }

    fn reset(&mut self) -> Result<(), Fault> {
        let dev = &mut self.ports;
        dev.set_cmd(false, 0);
        dev.set_weight(false, &vec![0; wire::words_for(self.config.weight_beat_bits as usize)]);
        dev.set_scale(false, &vec![0; wire::words_for(self.config.scale_beat_bits())]);
        dev.set_activation(false, &vec![0; wire::words_for(self.config.activation_beat_bits())]);
        dev.set_out_ready(false);
        dev.set_reset(true);
        dev.eval();
        // Two edges: every unit idle, and the one-cycle pipelines behind them empty.
        for _ in 0..2 {
            dev.tick();
            self.cycles += 1;
        }
        dev.set_reset(false);
        dev.eval();
        Ok(())
    }
}

/// Problems running a layer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriverError {
    #[error("layer {layer}: {problem}")]
    Input { layer: String, problem: String },
    #[error("layer {layer}, {step}, phase {phase}: {fault} ({progress})")]
    Device {
        layer: String,
        step: String,
        phase: Phase,
        fault: String,
        progress: Progress,
    },
    #[error("layer {layer}: {problem} ({progress})")]
    Protocol { layer: String, problem: String, progress: Progress },
    #[error("layer {layer}: {source}")]
    Program { layer: String, #[source] source: ProgramError },
    #[error("layer {layer}, {step}: output (token {token}, column {column}) is {got} on the device, {want} in the reference")]
    Mismatch {
        layer: String,
        step: String,
        token: usize,
        column: usize,
        got: i64,
        want: i64,
    },
}

/// The first step the device has not finished, and the phase it is in:
/// its scale beat (LOAD_G, or the h of a DRAIN), its weights, its tokens, or
/// its outputs.
pub fn locate<'a>(program: &'a Program, p: &Progress) -> (Option<&'a Step>, Phase) {
    for step in &program.steps {
        let phase = match step.opcode {
            Opcode::Tile if p.scales < step.scales.end => Phase::LoadG,
            Opcode::Tile if p.weights < step.weights.end => Phase::LoadW,
            Opcode::Tile if p.activations < step.activations.end => Phase::Run,
            Opcode::Drain if p.scales < step.scales.end || p.outputs < step.outputs.end => Phase::Drain,
            _ => continue,
        };
        return (Some(step), phase);
    }
    (None, Phase::Drain)
}

/// Check that every beat has the width its stream carries and no bit above it.
fn check_widths(program: &Program, layer: &str) -> Result<(), DriverError> {
    let cfg = &program.config;
    for (name, beats, bits) in [
        ("weight", &program.weight_beats, cfg.weight_beat_bits as usize),
        ("scale", &program.scale_beats, cfg.scale_beat_bits()),
        ("activation", &program.activation_beats, cfg.activation_beat_bits()),
    ] {
        let words = wire::words_for(bits);
        for (i, b) in beats.iter().enumerate() {
            if b.len() != words || (bits..32 * b.len()).any(|k| wire::get_bit(b, k)) {
                return Err(DriverError::Input {
                    layer: layer.into(),
                    problem: format!(
                        "{name} beat {i} is {} words with {} bits set, the device takes {bits}-bit beats ({words} words)",
                        b.len(),
                        b.iter().map(|w| w.count_ones()).sum::<u32>()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The result of a layer run.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRun {
    pub output: Array2<i64>,
    pub progress: Progress,
}

/// Run `program` (the layer `layer`) on `dev`. A device that stops, makes
/// extra output or outputs out of order, or a beat of the wrong width, is
/// an error naming the layer, the step (tile or drain) and the phase.
pub fn run_layer(dev: &mut dyn Device, program: &Program, layer: &str, deadline: Deadline) -> Result<LayerRun, DriverError> {
    check_widths(program, layer)?;
    if dev.config() != program.config {
        return Err(DriverError::Input {
            layer: layer.into(),
            problem: format!("the program is for {}, the device is {}", program.config, dev.config()),
        });
    }
    let ex = dev.exchange(&Job::of(program), deadline).map_err(|fault| {
        let progress = fault.progress();
        let (step, phase) = locate(program, &progress);
        DriverError::Device {
            layer: layer.into(),
            step: step.map_or("after the last step".into(), |s| s.to_string()),
            phase,
            fault: fault.to_string(),
            progress,
        }
    })?;
    for (beat, &before) in ex.commands_before.iter().enumerate() {
        let drain = program.drain_of_output(beat).expect("an output beat belongs to a drain");
        if before <= drain {
            return Err(DriverError::Protocol {
                layer: layer.into(),
                problem: format!(
                    "output beat {beat} arrived when {before} commands were taken, before its DRAIN (command {drain}, {})",
                    program.steps[drain]
                ),
                progress: ex.progress,
            });
        }
    }
    for (beat, b) in ex.outputs.iter().enumerate() {
        if !wire::output_beat_is_canonical(&program.config, b) {
            return Err(DriverError::Protocol {
                layer: layer.into(),
                problem: format!("output beat {beat} is not {} bits wide", program.config.out_beat_bits()),
                progress: ex.progress,
            });
        }
    }
    let output = program
        .assemble(&ex.outputs)
        .map_err(|source| DriverError::Program { layer: layer.into(), source })?;
    Ok(LayerRun { output, progress: ex.progress })
}

/// [`run_layer`], then compare with the reference's output for the same
/// layer: the first differing output is an error naming its drain.
pub fn run_layer_checked(
    dev: &mut dyn Device,
    program: &Program,
    layer: &str,
    deadline: Deadline,
    want: &Array2<i64>,
) -> Result<LayerRun, DriverError> {
    let run = run_layer(dev, program, layer, deadline)?;
    if let Some(((token, column), (&got, &want))) = run
        .output
        .indexed_iter()
        .map(|(i, v)| (i, v))
        .zip(want.iter())
        .map(|((i, g), w)| (i, (g, w)))
        .find(|(_, (g, w))| g != w)
    {
        let step = program
            .steps
            .iter()
            .find(|s| s.opcode == Opcode::Drain && s.tokens.contains(&token) && (s.n0..s.n0 + program.config.cols).contains(&column))
            .map_or_else(String::new, |s| s.to_string());
        return Err(DriverError::Mismatch {
            layer: layer.into(),
            step,
            token,
            column,
            got,
            want,
        });
    }
    Ok(run)
}
