//! The byte-link fuzz target's fixed jobs and scripted devices, shared with
//! the seed check in the stable suite (tests/fuzz_seeds.rs includes this file).
//!
//! An input is one selector byte, then what the device says. The selector
//! picks the array (bit 1), the layer shape (bits 2..4) and the transport
//! (bit 0): a board on a serial port ([`ScriptedSerial`], the rest of the
//! input is the bytes it sends, read in chunks of `1 + bits 5..7` bytes) or a
//! simulated board clocked by the driver ([`ScriptedPorts`], the rest of the
//! input is one control byte per clock, followed by the output byte on the
//! clocks where the board has one).

use ndarray::Array2;
use onebit_core::ports::BytePorts;
use onebit_core::synth::SplitMix64;
use onebit_core::wire::{self, framing};
use onebit_core::ArrayConfig;
use onebit_driver::bytelink;
use onebit_driver::{Job, Program};

/// Layer shapes (K, N, M): one tile, several tiles each way, a ragged edge.
pub const SHAPES: [(usize, usize, usize); 8] =
    [(1, 1, 1), (8, 4, 2), (9, 3, 2), (16, 16, 1), (17, 5, 3), (40, 20, 3), (3, 33, 2), (64, 2, 4)];

/// A compiled layer and the reference's output for it.
pub struct LinkJob {
    pub config: ArrayConfig,
    pub program: Program,
    pub want: Array2<i64>,
}

/// The job a selector byte names (deterministic).
pub fn job(selector: u8) -> LinkJob {
    let config = if selector & 2 == 0 { ArrayConfig::SIM16 } else { ArrayConfig::ICE40 };
    let (k, n, m) = SHAPES[(selector as usize >> 2) & 7];
    let mut rng = SplitMix64(u64::from(selector) + 1);
    let layer = onebit_core::synth::random_layer(&mut rng, k, n).quantize(&config).expect("a random layer quantises");
    let (lo, hi) = ArrayConfig::port_range(config.act_bits);
    let x = Array2::from_shape_fn((m, k), |_| rng.range_i64(lo, hi) as i32);
    let want = onebit_core::reference::integer_forward_naive(&config, &layer, x.view()).expect("reference runs");
    let program = Program::compile(&config, &layer, x.view()).expect("the layer compiles");
    LinkJob { config, program, want }
}

/// The output bytes a working board sends for `job`, in order.
pub fn correct_output_bytes(job: &LinkJob) -> Vec<u8> {
    let cfg = &job.config;
    let per_beat = cfg.out_words_per_beat;
    let mut out = Vec::new();
    for beat in 0..job.program.output_beats {
        let mut words = vec![0u32; wire::words_for(cfg.out_beat_bits())];
        for j in 0..per_beat {
            if let Some(s) = job.program.output_slots[beat * per_beat + j] {
                wire::put_field(&mut words, j * cfg.out_bits as usize, cfg.out_bits, job.want[[s.token, s.column]]);
            }
        }
        framing::le_bytes(&words, framing::output_beat_bytes(cfg), &mut out);
    }
    out
}

/// The script of a simulated board that takes every byte at once and sends
/// each DRAIN's output right after it: seeds for the clocked transport.
pub fn correct_port_script(job: &LinkJob) -> Vec<u8> {
    let segments = bytelink::encode(&Job::of(&job.program)).expect("the job frames");
    let outputs = correct_output_bytes(job);
    let per = framing::output_beat_bytes(&job.config);
    let (mut script, mut sent) = (Vec::new(), 0usize);
    for seg in &segments {
        script.extend(std::iter::repeat_n(1u8, seg.bytes.len()));
        for &b in &outputs[sent..sent + seg.outputs_after * per] {
            script.extend([2u8, b]);
        }
        sent += seg.outputs_after * per;
    }
    script
}

/// A serial port whose board sends `bytes`, then fails (a real port would
/// time out; failing at once keeps every run the same length).
pub struct ScriptedSerial<'a> {
    pub bytes: &'a [u8],
    pub chunk: usize,
    pub written: usize,
}

impl std::io::Read for ScriptedSerial<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.bytes.is_empty() {
            return Err(std::io::Error::other("the scripted board has nothing more to send"));
        }
        let n = buf.len().min(self.chunk).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

impl std::io::Write for ScriptedSerial<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A simulated board whose pins follow a script: each clock's control byte
/// sets rx_ready (bit 0) and tx_valid (bit 1); with tx_valid the next byte
/// is tx_data. Silent once the script ends.
pub struct ScriptedPorts<'a> {
    pub script: &'a [u8],
    rx_ready: bool,
    tx_valid: bool,
    tx_data: u8,
}

impl<'a> ScriptedPorts<'a> {
    pub fn new(script: &'a [u8]) -> Self {
        let mut p = ScriptedPorts { script, rx_ready: false, tx_valid: false, tx_data: 0 };
        p.advance();
        p
    }
    fn advance(&mut self) {
        let next = |s: &mut &[u8]| s.split_first().map(|(&b, rest)| (*s = rest, b).1);
        let control = next(&mut self.script).unwrap_or(0);
        self.rx_ready = control & 1 != 0;
        self.tx_valid = control & 2 != 0;
        self.tx_data = if self.tx_valid { next(&mut self.script).unwrap_or(0) } else { 0 };
    }
}

impl BytePorts for ScriptedPorts<'_> {
    fn set_reset(&mut self, _: bool) {}
    fn set_rx(&mut self, _: bool, _: u8) {}
    fn set_tx_ready(&mut self, _: bool) {}
    fn eval(&mut self) {}
    fn rx_ready(&self) -> bool {
        self.rx_ready
    }
    fn tx_valid(&self) -> bool {
        self.tx_valid
    }
    fn tx_data(&self) -> u8 {
        self.tx_data
    }
    fn tick(&mut self) {
        self.advance();
    }
}
