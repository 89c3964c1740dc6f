//! The host side of the board's byte link (hdl `ByteStreamBridge`, framing in
//! docs/bitstream.md): a [`Program`]'s streams interleaved into one byte
//! stream, and the device's output bytes turned back into words.
//!
//! Framing, host → device: a header byte naming the stream (0x01 cmd, 0x02 w,
//! 0x03 s, 0x04 x), then the stream's word as `ceil(width / 8)` little-endian
//! bytes. Device → host: each output word as `ceil(out_bits / 8)`
//! little-endian bytes.
//!
//! Order: each command is followed by the beats it consumes (LOAD_G: R scale
//! beats, LOAD_H: C, LOAD_W: beats_per_tile weight beats, RUN: M activation
//! beats), so the bridge, which holds one word at a time, always presents a
//! word the accelerator will take. A DRAIN ends a [`Segment`]: over a UART
//! (no back-pressure) the host must receive that DRAIN's M·C words before it
//! sends more, because the accelerator fetches no command while it drains.
//! Every other wait in the accelerator is a few dozen cycles, far less than a
//! UART byte time (docs/bitstream.md).

use crate::program::{Program, ProgramError};
use crate::stream::StallPolicy;
use crate::wire::{Command, Opcode};
use ndarray::Array2;
use onebit_core::synth::SplitMix64;
use onebit_core::ArrayConfig;

/// Header bytes, one per input stream (hdl's `ByteStreamBridge` decodes these).
pub const HEADER_CMD: u8 = 0x01;
pub const HEADER_WEIGHT: u8 = 0x02;
pub const HEADER_SCALE: u8 = 0x03;
pub const HEADER_ACTIVATION: u8 = 0x04;

/// Bytes carrying a word of `bits` bits.
pub const fn bytes_for(bits: usize) -> usize {
    bits.div_ceil(8)
}

/// Bytes per output word for `cfg`.
pub const fn output_word_bytes(cfg: &ArrayConfig) -> usize {
    bytes_for(cfg.out_bits as usize)
}

/// Problems framing a program or reading the device's bytes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkError {
    #[error("command {index} ({word:#010x}) does not decode: {problem}")]
    Command {
        index: usize,
        word: u32,
        problem: String,
    },
    #[error("the program's {stream} stream ends early: command {index} needs {want} more beats, {have} left")]
    ShortStream {
        stream: &'static str,
        index: usize,
        want: usize,
        have: usize,
    },
    #[error("{left} {stream} beats are not consumed by any command")]
    LeftOver { stream: &'static str, left: usize },
    #[error("{got} output bytes is not a whole number of {per_word}-byte words")]
    PartialWord { got: usize, per_word: usize },
    #[error(
        "no progress after {cycles} cycles (limit {limit}): sent {sent}/{total} bytes, received {received}/{want} words"
    )]
    Timeout {
        cycles: u64,
        limit: u64,
        sent: usize,
        total: usize,
        received: usize,
        want: usize,
    },
    #[error("link: {0}")]
    Io(String),
    #[error("the device sent {got} of the {want} bytes expected after segment {segment} and then nothing")]
    Silent {
        segment: usize,
        got: usize,
        want: usize,
    },
    #[error(transparent)]
    Program(#[from] ProgramError),
}

/// Bytes to send, then the output words to receive before the next segment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Segment {
    pub bytes: Vec<u8>,
    pub words_after: usize,
}

/// The low `n` bytes of little-endian u32 words.
fn le_bytes(words: &[u32], n: usize, out: &mut Vec<u8>) {
    out.extend((0..n).map(|i| words.get(i / 4).map_or(0, |w| (w >> (8 * (i % 4))) as u8)));
}

/// Frame `program` into segments (see the module documentation for the order).
pub fn encode(program: &Program) -> Result<Vec<Segment>, LinkError> {
    let cfg = &program.config;
    let (nw, nx) = (
        bytes_for(cfg.weight_beat_bits as usize),
        bytes_for(cfg.rows * cfg.act_bits as usize),
    );
    let (mut w, mut s, mut x) = (0usize, 0usize, 0usize);
    let mut segments = vec![];
    let mut cur = Segment::default();
    for (index, &word) in program.commands.iter().enumerate() {
        let cmd = Command::decode(word).map_err(|e| LinkError::Command {
            index,
            word,
            problem: e.problem,
        })?;
        cur.bytes.push(HEADER_CMD);
        cur.bytes.extend(word.to_le_bytes());
        let take = |stream: &'static str, next: &mut usize, want: usize, have: usize| {
            if *next + want > have {
                return Err(LinkError::ShortStream {
                    stream,
                    index,
                    want,
                    have: have - *next,
                });
            }
            let r = *next..*next + want;
            *next += want;
            Ok(r)
        };
        match cmd.opcode {
            Opcode::LoadG | Opcode::LoadH => {
                let n = if cmd.opcode == Opcode::LoadG {
                    cfg.rows
                } else {
                    cfg.cols
                };
                for i in take("scale", &mut s, n, program.scale_beats.len())? {
                    cur.bytes.push(HEADER_SCALE);
                    cur.bytes.extend(program.scale_beats[i].to_le_bytes());
                }
            }
            Opcode::LoadW => {
                for i in take(
                    "weight",
                    &mut w,
                    cfg.beats_per_tile(),
                    program.weight_beats.len(),
                )? {
                    cur.bytes.push(HEADER_WEIGHT);
                    le_bytes(&program.weight_beats[i], nw, &mut cur.bytes);
                }
            }
            Opcode::Run => {
                for i in take(
                    "activation",
                    &mut x,
                    cmd.count as usize,
                    program.activation_beats.len(),
                )? {
                    cur.bytes.push(HEADER_ACTIVATION);
                    le_bytes(&program.activation_beats[i], nx, &mut cur.bytes);
                }
            }
            Opcode::Drain => {
                cur.words_after = cmd.count as usize * cfg.cols;
                segments.push(std::mem::take(&mut cur));
            }
        }
    }
    for (stream, next, len) in [
        ("weight", w, program.weight_beats.len()),
        ("scale", s, program.scale_beats.len()),
        ("activation", x, program.activation_beats.len()),
    ] {
        if next != len {
            return Err(LinkError::LeftOver {
                stream,
                left: len - next,
            });
        }
    }
    if !cur.bytes.is_empty() {
        segments.push(cur);
    }
    Ok(segments)
}

/// Output bytes back into raw words (low out_bits significant, as the
/// accelerator's `o_data`; `Program::assemble` sign-extends them).
pub fn decode_words(cfg: &ArrayConfig, bytes: &[u8]) -> Result<Vec<u64>, LinkError> {
    let per_word = output_word_bytes(cfg);
    if !bytes.len().is_multiple_of(per_word) {
        return Err(LinkError::PartialWord {
            got: bytes.len(),
            per_word,
        });
    }
    let mask = if cfg.out_bits >= 64 {
        u64::MAX
    } else {
        (1u64 << cfg.out_bits) - 1
    };
    Ok(bytes
        .chunks(per_word)
        .map(|c| c.iter().rev().fold(0u64, |v, &b| (v << 8) | b as u64) & mask)
        .collect())
}

/// The device's byte ports as seen from the host, one clock (the hdl
/// `BridgedAccelerator` in rust-hdl's simulator implements it).
pub trait BytePorts {
    fn set_rx(&mut self, valid: bool, byte: u8);
    fn set_tx_ready(&mut self, ready: bool);
    /// Settle the combinational logic after inputs changed.
    fn eval(&mut self);
    fn rx_ready(&self) -> bool;
    fn tx_valid(&self) -> bool;
    fn tx_data(&self) -> u8;
    /// One rising clock edge, then settle.
    fn tick(&mut self);
}

/// Run `program` over the byte ports, segment by segment (waiting for each
/// DRAIN's words before sending on, as over a UART), with optional random
/// stalls on both byte streams; returns the raw words and the cycles taken.
pub fn run_bytes(
    dev: &mut impl BytePorts,
    program: &Program,
    stalls: Option<StallPolicy>,
    limit: u64,
) -> Result<(Vec<u64>, u64), LinkError> {
    let segments = encode(program)?;
    let per_word = output_word_bytes(&program.config);
    let total: usize = segments.iter().map(|s| s.bytes.len()).sum();
    let want_words = program.output_slots.len();
    let mut rng = SplitMix64(stalls.map_or(0, |s| s.seed));
    let p = stalls.map_or(0.0, |s| s.stall);
    let mut stall = move || p > 0.0 && rng.unit() < p;
    let mut received: Vec<u8> = vec![];
    let (mut cycles, mut sent) = (0u64, 0usize);
    let mut expected_words = 0usize;
    for seg in &segments {
        let mut i = 0;
        let mut presenting = false;
        expected_words += seg.words_after;
        while i < seg.bytes.len() || received.len() < expected_words * per_word {
            if cycles >= limit {
                return Err(LinkError::Timeout {
                    cycles,
                    limit,
                    sent,
                    total,
                    received: received.len() / per_word,
                    want: want_words,
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
            if present && dev.rx_ready() {
                i += 1;
                sent += 1;
                presenting = false;
            }
            if ready && dev.tx_valid() {
                received.push(dev.tx_data());
            }
            dev.tick();
            cycles += 1;
        }
    }
    dev.set_rx(false, 0);
    dev.eval();
    Ok((decode_words(&program.config, &received)?, cycles))
}

/// [`run_bytes`], then the M×N output.
pub fn run(
    dev: &mut impl BytePorts,
    program: &Program,
    stalls: Option<StallPolicy>,
    limit: u64,
) -> Result<(Array2<i64>, u64), LinkError> {
    let (words, cycles) = run_bytes(dev, program, stalls, limit)?;
    Ok((program.assemble(&words)?, cycles))
}

/// Run `program` over a byte transport: a serial port opened as a file (in
/// raw mode, with a read timeout so that a silent device ends the run), or a
/// simulated board. Writes each segment, then reads the bytes of its DRAIN's
/// words before the next; returns the raw words.
pub fn run_transport<T: std::io::Read + std::io::Write>(
    link: &mut T,
    program: &Program,
) -> Result<Vec<u64>, LinkError> {
    let per_word = output_word_bytes(&program.config);
    let io = |e: std::io::Error| LinkError::Io(e.to_string());
    let mut received = vec![];
    for (segment, seg) in encode(program)?.iter().enumerate() {
        link.write_all(&seg.bytes).map_err(io)?;
        link.flush().map_err(io)?;
        let want = seg.words_after * per_word;
        let mut buf = vec![0u8; want];
        let mut got = 0;
        while got < want {
            match link.read(&mut buf[got..]) {
                Ok(0) => return Err(LinkError::Silent { segment, got, want }),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        received.extend_from_slice(&buf);
    }
    decode_words(&program.config, &received)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn program(cfg: &ArrayConfig, k: usize, n: usize, m: usize) -> Program {
        let mut rng = SplitMix64(7);
        let layer = onebit_core::synth::random_layer(&mut rng, k, n)
            .quantize(cfg)
            .unwrap();
        let x = Array2::from_shape_fn((m, k), |(i, j)| ((i * 31 + j * 7) % 255) as i32 - 127);
        Program::compile(cfg, &layer, x.view()).unwrap()
    }

    #[test]
    fn every_beat_is_framed_once_and_drains_end_segments() {
        let cfg = ArrayConfig::SIM16;
        let p = program(&cfg, 40, 20, 3);
        let segs = encode(&p).unwrap();
        let drains = p
            .commands
            .iter()
            .filter(|&&c| c & 0xF == Opcode::Drain as u32)
            .count();
        assert_eq!(segs.len(), drains);
        assert_eq!(
            segs.iter().map(|s| s.words_after).sum::<usize>(),
            p.output_slots.len()
        );
        let all: Vec<u8> = segs.iter().flat_map(|s| s.bytes.clone()).collect();
        // Walk the frames: every header is known and its payload has the right length.
        let (mut i, mut counts) = (0, [0usize; 5]);
        while i < all.len() {
            let h = all[i] as usize;
            let n = match all[i] {
                HEADER_CMD => 4,
                HEADER_WEIGHT => 2,
                HEADER_SCALE => 2,
                HEADER_ACTIVATION => 16,
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
        // The first frame is the first command, little-endian.
        assert_eq!(&all[1..5], &p.commands[0].to_le_bytes());
    }

    #[test]
    fn odd_widths_use_the_low_bytes_little_endian() {
        let mut out = vec![];
        le_bytes(&[0x4433_2211, 0x0000_0055], 5, &mut out);
        assert_eq!(out, [0x11, 0x22, 0x33, 0x44, 0x55]);
        let cfg = ArrayConfig::ICE40; // out_bits 22: 3 bytes per word
        assert_eq!(
            decode_words(&cfg, &[0x01, 0x02, 0xFF, 0xFF, 0xFF, 0x3F]).unwrap(),
            [0x3F_0201, 0x3F_FFFF]
        );
        assert!(matches!(
            decode_words(&cfg, &[1, 2, 3, 4]),
            Err(LinkError::PartialWord {
                got: 4,
                per_word: 3
            })
        ));
    }

    #[test]
    fn a_truncated_program_is_an_error() {
        let cfg = ArrayConfig::ICE40;
        let mut p = program(&cfg, 9, 3, 2);
        p.activation_beats.pop();
        assert!(matches!(
            encode(&p),
            Err(LinkError::ShortStream {
                stream: "activation",
                ..
            })
        ));
        let mut p = program(&cfg, 9, 3, 2);
        p.scale_beats.push(0);
        assert!(matches!(
            encode(&p),
            Err(LinkError::LeftOver {
                stream: "scale",
                left: 1
            })
        ));
    }
}
