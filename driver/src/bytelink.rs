//! The host side of the board's byte link (hdl `ByteStreamBridge`; framing in
//! `onebit_core::wire::framing`, docs/bitstream.md): a program's streams
//! interleaved into one byte stream, output bytes back into beats, and two
//! [`Device`]s over it: [`ByteLinkDevice`] for a simulated board clocked by
//! the driver, [`SerialLink`] for a real board on a serial port.
//!
//! Order: each command is followed by the beats it takes (TILE: its g beat,
//! its weight beats, its activation beats; DRAIN: its h beat), so the bridge,
//! which holds one beat at a time, always presents a beat the accelerator
//! will take. A DRAIN ends a [`Segment`]: a UART cannot push back, so the
//! host receives that DRAIN's output beats before it sends more (every other
//! wait in the accelerator is a few dozen cycles, far less than a byte time).

use crate::device::{Deadline, Device, Exchange, Fault, Job, Progress, StallPolicy};
use onebit_core::ports::BytePorts;
use onebit_core::synth::SplitMix64;
use onebit_core::wire::framing::{self, HEADER_ACTIVATION, HEADER_CMD, HEADER_SCALE, HEADER_WEIGHT};
use onebit_core::wire::{self, Command};
use onebit_core::ArrayConfig;

/// Problems framing a job.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkError {
    #[error("command {index} ({word:#010x}) does not decode: {problem}")]
    Command { index: usize, word: u32, problem: String },
    #[error("the {stream} stream ends early: command {index} needs {want} more beats, {have} left")]
    ShortStream {
        stream: &'static str,
        index: usize,
        want: usize,
        have: usize,
    },
    #[error("{left} {stream} beats are not taken by any command")]
    LeftOver { stream: &'static str, left: usize },
}

/// Which stream a frame carries (its header), in the order of [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Command,
    Weight,
    Scale,
    Activation,
}

/// Bytes to send, then the output beats to receive before the next segment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Segment {
    pub bytes: Vec<u8>,
    /// Where each frame ends in `bytes`, and what it carries.
    pub frames: Vec<(usize, FrameKind)>,
    pub outputs_after: usize,
}

/// Frame `job` into segments (see the module documentation for the order).
pub fn encode(job: &Job) -> Result<Vec<Segment>, LinkError> {
    let cfg = job.config;
    let [_, nw, ns, nx] = framing::payload_bytes(cfg);
    let (mut w, mut s, mut x) = (0usize, 0usize, 0usize);
    let mut segments = vec![];
    let mut cur = Segment::default();
    let frame = |cur: &mut Segment, header: u8, kind: FrameKind, words: &[u32], n: usize| {
        cur.bytes.push(header);
        framing::le_bytes(words, n, &mut cur.bytes);
        cur.frames.push((cur.bytes.len(), kind));
    };
    for (index, &word) in job.commands.iter().enumerate() {
        let cmd = Command::decode(word).map_err(|e| LinkError::Command { index, word, problem: e.problem })?;
        frame(&mut cur, HEADER_CMD, FrameKind::Command, &[word], 4);
        let take = |stream: &'static str, next: &mut usize, want: usize, have: usize| {
            if *next + want > have {
                return Err(LinkError::ShortStream { stream, index, want, have: have - *next });
            }
            let r = *next..*next + want;
            *next += want;
            Ok(r)
        };
        for i in take("scale", &mut s, cmd.scale_beats(), job.scales.len())? {
            frame(&mut cur, HEADER_SCALE, FrameKind::Scale, &job.scales[i], ns);
        }
        for i in take("weight", &mut w, cmd.weight_beats(cfg), job.weights.len())? {
            frame(&mut cur, HEADER_WEIGHT, FrameKind::Weight, &job.weights[i], nw);
        }
        for i in take("activation", &mut x, cmd.activation_beats(), job.activations.len())? {
            frame(&mut cur, HEADER_ACTIVATION, FrameKind::Activation, &job.activations[i], nx);
        }
        if cmd.output_beats(cfg) > 0 {
            cur.outputs_after = cmd.output_beats(cfg);
            segments.push(std::mem::take(&mut cur));
        }
    }
    for (stream, next, len) in [
        ("weight", w, job.weights.len()),
        ("scale", s, job.scales.len()),
        ("activation", x, job.activations.len()),
    ] {
        if next != len {
            return Err(LinkError::LeftOver { stream, left: len - next });
        }
    }
    if !cur.bytes.is_empty() {
        segments.push(cur);
    }
    Ok(segments)
}

/// Output bytes (a whole number of beats) back into output beats.
pub fn decode_beats(cfg: &ArrayConfig, bytes: &[u8]) -> Vec<Vec<u32>> {
    let per = framing::output_beat_bytes(cfg);
    let words = wire::words_for(cfg.out_beat_bits());
    bytes
        .chunks_exact(per)
        .map(|c| {
            let mut w = framing::le_words(c);
            w.resize(words, 0);
            w
        })
        .collect()
}

/// Beats of each stream carried by frames that end at or before `sent` bytes
/// of the segments (whole segments `done` before the current one).
fn progress_of(segments: &[Segment], seg: usize, sent: usize, outputs: usize, cycles: u64) -> Progress {
    let mut p = Progress { outputs, cycles, ..Progress::default() };
    let mut count = |kind: FrameKind| match kind {
        FrameKind::Command => p.commands += 1,
        FrameKind::Weight => p.weights += 1,
        FrameKind::Scale => p.scales += 1,
        FrameKind::Activation => p.activations += 1,
    };
    for s in &segments[..seg] {
        s.frames.iter().for_each(|&(_, k)| count(k));
    }
    if let Some(s) = segments.get(seg) {
        s.frames.iter().filter(|&&(end, _)| end <= sent).for_each(|&(_, k)| count(k));
    }
    p
}

/// A simulated board (anything with [`BytePorts`]) as a [`Device`], clocked
/// by the driver, with optional random stalls on both byte streams.
pub struct ByteLinkDevice<B> {
    pub ports: B,
    pub config: ArrayConfig,
    pub stalls: Option<StallPolicy>,
    pub cycles: u64,
    rng: SplitMix64,
}

impl<B: BytePorts> ByteLinkDevice<B> {
    pub fn new(ports: B, config: ArrayConfig) -> Self {
        ByteLinkDevice { ports, config, stalls: None, cycles: 0, rng: SplitMix64(0) }
    }
    pub fn with_stalls(mut self, stalls: Option<StallPolicy>) -> Self {
        self.stalls = stalls;
        self.rng = SplitMix64(stalls.map_or(0, |s| s.seed));
        self
    }
}

impl<B: BytePorts> Device for ByteLinkDevice<B> {
    fn config(&self) -> ArrayConfig {
        self.config
    }

    fn exchange(&mut self, job: &Job, deadline: Deadline) -> Result<Exchange, Fault> {
        let segments = encode(job).map_err(|e| Fault::Link { message: e.to_string(), progress: Progress::default() })?;
        let idle_limit = match deadline {
            Deadline::IdleCycles(n) => n,
            Deadline::IdleTime(_) => u64::MAX,
        };
        let per = framing::output_beat_bytes(&self.config);
        let p = self.stalls.map_or(0.0, |s| s.stall);
        let rng = &mut self.rng;
        let mut stall = move || p > 0.0 && rng.unit() < p;
        let dev = &mut self.ports;
        let start = self.cycles;
        let mut received: Vec<u8> = vec![];
        let (mut expected, mut commands_before) = (0usize, vec![]);
        let mut commands_sent = 0usize;
        dev.set_reset(false);
        for (si, seg) in segments.iter().enumerate() {
            let (mut i, mut presenting, mut idle) = (0usize, false, 0u64);
            expected += seg.outputs_after;
            while i < seg.bytes.len() || received.len() < expected * per {
                if idle >= idle_limit {
                    return Err(Fault::Stopped {
                        idle: format!("{idle_limit} cycles"),
                        progress: progress_of(&segments, si, i, received.len() / per, self.cycles - start),
                    });
                }
                if i < seg.bytes.len() && !presenting {
                    presenting = !stall();
                }
                let present = presenting && i < seg.bytes.len();
                dev.set_rx(present, if present { seg.bytes[i] } else { 0 });
                let ready = !stall();
                dev.set_tx_ready(ready);
                dev.eval();
                let mut moved = false;
                if present && dev.rx_ready() {
                    i += 1;
                    presenting = false;
                    moved = true;
                    commands_sent = progress_of(&segments, si, i, 0, 0).commands;
                }
                if ready && dev.tx_valid() {
                    if received.len() >= job.outputs * per {
                        return Err(Fault::ExtraOutput {
                            progress: progress_of(&segments, si, i, job.outputs + 1, self.cycles - start),
                        });
                    }
                    received.push(dev.tx_data());
                    if received.len() % per == 0 {
                        commands_before.push(commands_sent);
                    }
                    moved = true;
                }
                dev.tick();
                self.cycles += 1;
                idle = if moved { 0 } else { idle + 1 };
            }
        }
        dev.set_rx(false, 0);
        dev.eval();
        let outputs = decode_beats(&self.config, &received);
        Ok(Exchange {
            progress: progress_of(&segments, segments.len(), 0, outputs.len(), self.cycles - start),
            outputs,
            commands_before,
        })
    }

    fn reset(&mut self) -> Result<(), Fault> {
        self.ports.set_rx(false, 0);
        self.ports.set_reset(true);
        self.ports.eval();
        for _ in 0..2 {
            self.ports.tick();
            self.cycles += 1;
        }
        self.ports.set_reset(false);
        self.ports.eval();
        Ok(())
    }
}

/// A real board on a byte transport (a serial port opened as a file in raw
/// mode, with a read timeout so that a silent board ends the read) as a
/// [`Device`]: writes each segment, then reads its DRAIN's output beats.
pub struct SerialLink<T> {
    pub link: T,
    pub config: ArrayConfig,
}

impl<T: std::io::Read + std::io::Write> Device for SerialLink<T> {
    fn config(&self) -> ArrayConfig {
        self.config
    }

    fn exchange(&mut self, job: &Job, deadline: Deadline) -> Result<Exchange, Fault> {
        let segments = encode(job).map_err(|e| Fault::Link { message: e.to_string(), progress: Progress::default() })?;
        let idle = match deadline {
            Deadline::IdleTime(t) => t,
            Deadline::IdleCycles(_) => std::time::Duration::from_secs(2),
        };
        let per = framing::output_beat_bytes(&self.config);
        let mut received = vec![];
        let mut commands_before = vec![];
        for (si, seg) in segments.iter().enumerate() {
            let link_fault = |e: std::io::Error, got: usize| Fault::Link {
                message: e.to_string(),
                progress: progress_of(&segments, si, seg.bytes.len(), got / per, 0),
            };
            self.link.write_all(&seg.bytes).map_err(|e| link_fault(e, received.len()))?;
            self.link.flush().map_err(|e| link_fault(e, received.len()))?;
            let want = received.len() + seg.outputs_after * per;
            let mut last = std::time::Instant::now();
            let mut buf = [0u8; 4096];
            while received.len() < want {
                match self.link.read(&mut buf[..(want - received.len()).min(4096)]) {
                    Ok(0) => {}
                    Ok(n) => {
                        received.extend_from_slice(&buf[..n]);
                        last = std::time::Instant::now();
                    }
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {}
                    Err(e) => return Err(link_fault(e, received.len())),
                }
                if last.elapsed() > idle {
                    return Err(Fault::Stopped {
                        idle: format!("{idle:?}"),
                        progress: progress_of(&segments, si, seg.bytes.len(), received.len() / per, 0),
                    });
                }
            }
            let cmds = progress_of(&segments, si + 1, 0, 0, 0).commands;
            commands_before.resize(received.len() / per, cmds);
        }
        let outputs = decode_beats(&self.config, &received);
        Ok(Exchange {
            progress: progress_of(&segments, segments.len(), 0, outputs.len(), 0),
            outputs,
            commands_before,
        })
    }

    fn reset(&mut self) -> Result<(), Fault> {
        Err(Fault::NoReset(
            "a serial link has no reset line: send the board a UART break (the line low for two characters, e.g. \
             `python3 -c 'import serial; serial.Serial(PORT).send_break(0.1)'`) or reconfigure it (docs/bitstream.md)"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::Program;
    use ndarray::Array2;

    fn program(cfg: &ArrayConfig, k: usize, n: usize, m: usize) -> Program {
        let mut rng = SplitMix64(7);
        let layer = onebit_core::synth::random_layer(&mut rng, k, n).quantize(cfg).unwrap();
        let x = Array2::from_shape_fn((m, k), |(i, j)| ((i * 31 + j * 7) % 255) as i32 - 127);
        Program::compile(cfg, &layer, x.view()).unwrap()
    }

    #[test]
    fn every_beat_is_framed_once_and_drains_end_segments() {
        let cfg = ArrayConfig::SIM16;
        let p = program(&cfg, 40, 20, 3);
        let segs = encode(&Job::of(&p)).unwrap();
        let drains = p.commands.iter().filter(|&&c| Command::decode(c).unwrap().output_beats(&cfg) > 0).count();
        assert_eq!(segs.len(), drains);
        assert_eq!(segs.iter().map(|s| s.outputs_after).sum::<usize>(), p.output_beats);
        let all: Vec<u8> = segs.iter().flat_map(|s| s.bytes.clone()).collect();
        // Walk the frames: every header is known and its payload has the right length.
        let [nc, nw, ns, nx] = framing::payload_bytes(&cfg);
        let (mut i, mut counts) = (0, [0usize; 5]);
        while i < all.len() {
            let h = all[i] as usize;
            let n = match all[i] {
                HEADER_CMD => nc,
                HEADER_WEIGHT => nw,
                HEADER_SCALE => ns,
                HEADER_ACTIVATION => nx,
                other => panic!("bad header {other} at {i}"),
            };
            counts[h] += 1;
            i += 1 + n;
        }
        assert_eq!(i, all.len());
        assert_eq!(counts[1], p.commands.len());
        assert_eq!(counts[2], p.weight_beats.len());
        assert_eq!(counts[3], p.scale_beats.len());
        assert_eq!(counts[4], p.activation_beats.len());
        assert_eq!(&all[1..5], &p.commands[0].to_le_bytes());
        // Progress counts whole frames.
        let done = progress_of(&segs, segs.len(), 0, 0, 0);
        assert_eq!((done.commands, done.weights, done.scales, done.activations), (p.commands.len(), p.weight_beats.len(), p.scale_beats.len(), p.activation_beats.len()));
        assert_eq!(progress_of(&segs, 0, 5, 0, 0).commands, 1);
        assert_eq!(progress_of(&segs, 0, 4, 0, 0).commands, 0);
    }

    #[test]
    fn output_bytes_become_beats() {
        let cfg = ArrayConfig::ICE40; // one 22-bit word per beat: 3 bytes
        assert_eq!(decode_beats(&cfg, &[0x01, 0x02, 0x3F, 0xFF, 0xFF, 0x3F]), [vec![0x3F_0201], vec![0x3F_FFFF]]);
    }

    #[test]
    fn a_truncated_job_is_an_error() {
        let cfg = ArrayConfig::ICE40;
        let mut p = program(&cfg, 9, 3, 2);
        p.activation_beats.pop();
        assert!(matches!(encode(&Job::of(&p)), Err(LinkError::ShortStream { stream: "activation", .. })));
        let mut p = program(&cfg, 9, 3, 2);
        p.scale_beats.push(vec![0; 4]);
        assert!(matches!(encode(&Job::of(&p)), Err(LinkError::LeftOver { stream: "scale", left: 1 })));
    }
}

/// Open a serial port as a byte link: raw 8N1 at `baud`, no flow control,
/// reads that return after 2 s of silence (`stty`, so no extra crate).
pub fn open_serial(path: &std::path::Path, baud: u32) -> std::io::Result<std::fs::File> {
    let port = path.display().to_string();
    let status = std::process::Command::new("stty")
        .args(["-F", &port, &baud.to_string()])
        .args(["raw", "-echo", "cs8", "-cstopb", "-parenb", "-crtscts", "-ixon", "-ixoff"])
        .args(["min", "0", "time", "20"])
        .status()?;
    if !status.success() {
        return Err(std::io::Error::other(format!("stty could not configure {port}")));
    }
    std::fs::OpenOptions::new().read(true).write(true).open(path)
}

/// What [`check_board`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardReport {
    pub k: usize,
    pub n: usize,
    pub m: usize,
    pub outputs: usize,
    pub wrong: usize,
    pub seconds: f64,
}

impl std::fmt::Display for BoardReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "K={} N={} M={}: {} outputs in {:.2} s, {} differ from the reference",
            self.k, self.n, self.m, self.outputs, self.seconds, self.wrong
        )
    }
}

/// Run a random K×N layer on M random tokens through a board's byte link
/// and count the outputs that differ from the integer reference.
pub fn check_board<T: std::io::Read + std::io::Write>(
    link: T,
    cfg: ArrayConfig,
    k: usize,
    n: usize,
    m: usize,
    seed: u64,
) -> Result<BoardReport, crate::DriverError> {
    let input = |problem: String| crate::DriverError::Input { layer: "board check".into(), problem };
    if k == 0 || n == 0 || m == 0 {
        return Err(input("K, N and M must be at least 1".into()));
    }
    let mut rng = SplitMix64(seed);
    let layer = onebit_core::synth::random_layer(&mut rng, k, n).quantize(&cfg).map_err(|e| input(e.to_string()))?;
    let (lo, hi) = ArrayConfig::port_range(cfg.act_bits);
    let x = ndarray::Array2::from_shape_fn((m, k), |_| rng.range_i64(lo, hi) as i32);
    let want = onebit_core::reference::integer_forward_naive(&cfg, &layer, x.view()).map_err(|e| input(e.to_string()))?;
    let program = crate::Program::compile(&cfg, &layer, x.view()).map_err(|e| input(e.to_string()))?;
    let start = std::time::Instant::now();
    let mut dev = SerialLink { link, config: cfg };
    let run = crate::run_layer(&mut dev, &program, "board check", Deadline::IdleTime(std::time::Duration::from_secs(5)))?;
    let wrong = run.output.iter().zip(want.iter()).filter(|(a, b)| a != b).count();
    Ok(BoardReport { k, n, m, outputs: want.len(), wrong, seconds: start.elapsed().as_secs_f64() })
}
