//! The accelerator's wire protocol, defined once for the hardware (`hdl/`) and
//! the host (`driver/`): opcodes, the command word, the layout of every beat,
//! and the byte framing of the board's serial link (docs/hardware.md,
//! docs/bitstream.md).
//!
//! Wide beats travel as little-endian `u32` words (bit i of a beat is bit
//! i % 32 of word i / 32), which is also how Verilator passes wide ports.

use crate::config::ArrayConfig;

/// Command opcodes (bits [3:0] of a command word). Opcodes 1–4 were the
/// first protocol's LOAD_G, LOAD_H, LOAD_W and RUN; like every other unknown
/// opcode they are consumed and do nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// One scale beat (h of the C columns), then drain `count` tokens from
    /// the accumulator bank the preceding TILEs filled; the next TILE
    /// accumulates into the other bank.
    Drain = 5,
    /// One scale beat (g of the R rows) and `beats_per_tile` weight beats
    /// into the next weight bank, then `count` activation beats run through
    /// that tile (ACC: add to the accumulators instead of overwriting).
    Tile = 6,
}

impl Opcode {
    pub const fn from_bits(b: u32) -> Option<Opcode> {
        match b {
            5 => Some(Opcode::Drain),
            6 => Some(Opcode::Tile),
            _ => None,
        }
    }
    pub const fn name(self) -> &'static str {
        match self {
            Opcode::Drain => "DRAIN",
            Opcode::Tile => "TILE",
        }
    }
}

/// Bits [3:0]: the opcode.
pub const OPCODE_BITS: u32 = 4;
/// Bit 4 of a command: TILE adds to the accumulators instead of overwriting.
pub const ACC_FLAG: u32 = 1 << 4;
/// Bits [15:5] are reserved (0).
pub const RESERVED_MASK: u32 = 0xFFE0;
/// Bits [31:16]: the count (tokens).
pub const COUNT_SHIFT: u32 = 16;

/// One command: opcode, ACC flag, count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    pub opcode: Opcode,
    pub acc: bool,
    pub count: u16,
}

/// A command word that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command word {word:#010x}: {problem}")]
pub struct DecodeError {
    pub word: u32,
    pub problem: String,
}

impl Command {
    pub const fn new(opcode: Opcode, acc: bool, count: u16) -> Self {
        Command { opcode, acc, count }
    }
    pub const fn tile(count: u16, acc: bool) -> Self {
        Command::new(Opcode::Tile, acc, count)
    }
    pub const fn drain(count: u16) -> Self {
        Command::new(Opcode::Drain, false, count)
    }
    pub const fn encode(&self) -> u32 {
        (self.opcode as u32) | if self.acc { ACC_FLAG } else { 0 } | ((self.count as u32) << COUNT_SHIFT)
    }
    pub fn decode(word: u32) -> Result<Command, DecodeError> {
        let opcode = Opcode::from_bits(word & 0xF).ok_or_else(|| DecodeError {
            word,
            problem: format!("unknown opcode {}", word & 0xF),
        })?;
        if word & RESERVED_MASK != 0 {
            return Err(DecodeError {
                word,
                problem: "reserved bits [15:5] are set".into(),
            });
        }
        Ok(Command {
            opcode,
            acc: word & ACC_FLAG != 0,
            count: (word >> COUNT_SHIFT) as u16,
        })
    }
    /// Scale beats this command takes (one for TILE and DRAIN with count > 0).
    pub const fn scale_beats(&self) -> usize {
        (self.count > 0) as usize
    }
    /// Weight beats this command takes.
    pub const fn weight_beats(&self, cfg: &ArrayConfig) -> usize {
        match self.opcode {
            Opcode::Tile if self.count > 0 => cfg.beats_per_tile(),
            _ => 0,
        }
    }
    /// Activation beats this command takes.
    pub const fn activation_beats(&self) -> usize {
        match self.opcode {
            Opcode::Tile => self.count as usize,
            Opcode::Drain => 0,
        }
    }
    /// Output beats this command makes.
    pub const fn output_beats(&self, cfg: &ArrayConfig) -> usize {
        match self.opcode {
            Opcode::Drain => self.count as usize * cfg.out_beats_per_token(),
            Opcode::Tile => 0,
        }
    }
}

/// u32 words needed for a beat of `bits` bits.
pub const fn words_for(bits: usize) -> usize {
    bits.div_ceil(32)
}

/// Set bit `i` of a little-endian word vector.
#[inline]
pub fn set_bit(words: &mut [u32], i: usize, v: bool) {
    if v {
        words[i / 32] |= 1 << (i % 32);
    } else {
        words[i / 32] &= !(1 << (i % 32));
    }
}

/// Bit `i` of a little-endian word vector.
#[inline]
pub fn get_bit(words: &[u32], i: usize) -> bool {
    (words[i / 32] >> (i % 32)) & 1 == 1
}

/// Write the low `bits` of `value` (two's complement) at bit `offset`.
pub fn put_field(words: &mut [u32], offset: usize, bits: u32, value: i64) {
    // A word at a time (at most three words for 64 bits): the driver packs
    // and unpacks every beat of a run through these two.
    let mut done = 0u32;
    while done < bits {
        let i = offset + done as usize;
        let (w, s) = (i / 32, (i % 32) as u32);
        let take = (32 - s).min(bits - done);
        let mask = (((1u64 << take) - 1) as u32) << s;
        let part = (((value >> done) as u64 as u32) << s) & mask;
        words[w] = (words[w] & !mask) | part;
        done += take;
    }
}

/// Read `bits` bits at `offset` as an unsigned value (bits <= 64).
pub fn get_field(words: &[u32], offset: usize, bits: u32) -> u64 {
    assert!(bits <= 64, "get_field: {bits} bits do not fit a u64");
    let (mut v, mut done) = (0u64, 0u32);
    while done < bits {
        let i = offset + done as usize;
        let (w, s) = (i / 32, (i % 32) as u32);
        let take = (32 - s).min(bits - done);
        let part = ((words[w] >> s) as u64) & ((1u64 << take) - 1);
        v |= part << done;
        done += take;
    }
    v
}

/// Sign-extend the low `bits` of `raw`.
pub const fn sign_extend(raw: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

/// One activation beat: row r's x_q as `act_bits` two's complement in bits
/// [r·A, (r+1)·A); rows past `xs.len()` are 0.
pub fn pack_activations(cfg: &ArrayConfig, xs: &[i32]) -> Vec<u32> {
    let mut w = vec![0u32; words_for(cfg.activation_beat_bits())];
    for (r, &x) in xs.iter().enumerate().take(cfg.rows) {
        put_field(&mut w, r * cfg.act_bits as usize, cfg.act_bits, x as i64);
    }
    w
}

/// A TILE's scale beat: row r's g_q as `g_bits` two's complement in bits
/// [r·G, (r+1)·G); rows past `gs.len()` are 0.
pub fn pack_g_beat(cfg: &ArrayConfig, gs: &[i32]) -> Vec<u32> {
    let mut w = vec![0u32; words_for(cfg.scale_beat_bits())];
    for (r, &g) in gs.iter().enumerate().take(cfg.rows) {
        put_field(&mut w, r * cfg.g_bits as usize, cfg.g_bits, g as i64);
    }
    w
}

/// A DRAIN's scale beat: column c's h_q as `h_bits` two's complement in bits
/// [c·H, (c+1)·H); columns past `hs.len()` are 0.
pub fn pack_h_beat(cfg: &ArrayConfig, hs: &[i32]) -> Vec<u32> {
    let mut w = vec![0u32; words_for(cfg.scale_beat_bits())];
    for (c, &h) in hs.iter().enumerate().take(cfg.cols) {
        put_field(&mut w, c * cfg.h_bits as usize, cfg.h_bits, h as i64);
    }
    w
}

/// The weight beats of one R×C tile. The tile's sign bits form a stream in
/// column-major order (column c's R bits, row 0 first, then column c+1);
/// beat b carries stream bits [b·WB, (b+1)·WB), LSB first. `subtract(r, c)`
/// is the sign bit of PE (r, c): true for −1.
pub fn weight_tile_beats(cfg: &ArrayConfig, mut subtract: impl FnMut(usize, usize) -> bool) -> Vec<Vec<u32>> {
    let wb = cfg.weight_beat_bits as usize;
    let mut beats = vec![vec![0u32; words_for(wb)]; cfg.beats_per_tile()];
    for c in 0..cfg.cols {
        for r in 0..cfg.rows {
            let (beat, bit) = weight_stream_position(cfg, r, c);
            set_bit(&mut beats[beat], bit, subtract(r, c));
        }
    }
    beats
}

/// (beat, bit) of PE (r, c)'s sign in its tile's weight stream.
pub const fn weight_stream_position(cfg: &ArrayConfig, r: usize, c: usize) -> (usize, usize) {
    let i = c * cfg.rows + r;
    let wb = cfg.weight_beat_bits as usize;
    (i / wb, i % wb)
}

/// Output beat → its `out_words_per_beat` words, sign-extended. Word j sits
/// in bits [j·O, (j+1)·O); beat i of a token carries its columns
/// [i·OW, (i+1)·OW).
pub fn unpack_output_beat(cfg: &ArrayConfig, beat: &[u32]) -> Vec<i64> {
    (0..cfg.out_words_per_beat)
        .map(|j| sign_extend(get_field(beat, j * cfg.out_bits as usize, cfg.out_bits), cfg.out_bits))
        .collect()
}

/// Bits of an output beat above `out_beat_bits` that must be 0 in every word.
pub fn output_beat_is_canonical(cfg: &ArrayConfig, beat: &[u32]) -> bool {
    let bits = cfg.out_beat_bits();
    beat.len() == words_for(bits) && (bits..beat.len() * 32).all(|i| !get_bit(beat, i))
}

/// The serial link's framing (hdl `ByteStreamBridge` ↔ driver `bytelink`).
/// Host → device: a header byte naming the stream, then that stream's beat as
/// `ceil(width / 8)` little-endian bytes. Device → host: every output beat as
/// `ceil(out_beat_bits / 8)` little-endian bytes, no header.
pub mod framing {
    use crate::config::ArrayConfig;

    pub const HEADER_CMD: u8 = 0x01;
    pub const HEADER_WEIGHT: u8 = 0x02;
    pub const HEADER_SCALE: u8 = 0x03;
    pub const HEADER_ACTIVATION: u8 = 0x04;

    /// Bytes carrying a word of `bits` bits.
    pub const fn bytes_for(bits: usize) -> usize {
        bits.div_ceil(8)
    }
    /// Payload bytes after each header: cmd, weight, scale, activation.
    pub const fn payload_bytes(cfg: &ArrayConfig) -> [usize; 4] {
        [
            4,
            bytes_for(cfg.weight_beat_bits as usize),
            bytes_for(cfg.scale_beat_bits()),
            bytes_for(cfg.activation_beat_bits()),
        ]
    }
    /// Bytes per output beat.
    pub const fn output_beat_bytes(cfg: &ArrayConfig) -> usize {
        bytes_for(cfg.out_beat_bits())
    }
    /// The low `n` bytes of little-endian u32 words.
    pub fn le_bytes(words: &[u32], n: usize, out: &mut Vec<u8>) {
        out.extend((0..n).map(|i| words.get(i / 4).map_or(0, |w| (w >> (8 * (i % 4))) as u8)));
    }
    /// Little-endian bytes back into u32 words.
    pub fn le_words(bytes: &[u8]) -> Vec<u32> {
        bytes
            .chunks(4)
            .map(|c| c.iter().rev().fold(0u32, |v, &b| (v << 8) | b as u32))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn command_round_trips(op in 5u32..=6, acc: bool, count: u16) {
            let c = Command::new(Opcode::from_bits(op).unwrap(), acc, count);
            prop_assert_eq!(Command::decode(c.encode()).unwrap(), c);
        }

        /// The word-at-a-time field access equals the bit-by-bit definition,
        /// and writing a field leaves every other bit alone.
        #[test]
        fn fields_match_bitwise_definition(init in proptest::collection::vec(any::<u32>(), 4), v: i64, off in 0usize..64, bits in 1u32..=64) {
            let mut got = init.clone();
            put_field(&mut got, off, bits, v);
            let mut want = init.clone();
            for b in 0..bits as usize {
                set_bit(&mut want, off + b, (v >> b) & 1 == 1);
            }
            prop_assert_eq!(&got, &want);
            let bitwise = (0..bits as usize).fold(0u64, |a, b| a | ((get_bit(&init, off + b) as u64) << b));
            prop_assert_eq!(get_field(&init, off, bits), bitwise);
        }

        #[test]
        fn fields_round_trip(v in -(1i64 << 15)..(1i64 << 15), off in 0usize..90, bits in 16u32..=20) {
            let mut w = vec![0u32; 4];
            put_field(&mut w, off, bits, v);
            prop_assert_eq!(sign_extend(get_field(&w, off, bits), bits), v);
        }
    }

    #[test]
    fn command_layout_and_bad_words() {
        assert_eq!(Command::tile(7, true).encode(), 0x0007_0016);
        assert_eq!(Command::drain(1).encode(), 0x0001_0005);
        assert!(Command::decode(0x0000_0004).is_err());
        assert!(Command::decode(0x0000_0106).is_err());
    }

    #[test]
    fn beats_pack_two_complement_fields() {
        let cfg = ArrayConfig::SIM16;
        let w = pack_activations(&cfg, &[-1, 2, -128, 127]);
        assert_eq!(w.len(), 4);
        assert_eq!(w[0], 0x7F80_02FF);
        assert_eq!(&w[1..], &[0, 0, 0]);
        let g = pack_g_beat(&cfg, &[-2, 3]);
        assert_eq!(g.len(), 8);
        assert_eq!(g[0], 0x03FE);
        let h = pack_h_beat(&cfg, &[-2, 3]);
        assert_eq!(h[0], 0x0003_FFFE);
        assert_eq!(sign_extend(0x3FF_FFFF, 26), -1);
        assert_eq!(sign_extend(0x1FF_FFFF, 26), 0x1FF_FFFF);
        let mut beat = vec![0u32; words_for(cfg.out_beat_bits())];
        put_field(&mut beat, 26, 26, -5);
        let words = unpack_output_beat(&cfg, &beat);
        assert_eq!((words.len(), words[0], words[1]), (16, 0, -5));
        assert!(output_beat_is_canonical(&cfg, &beat));
        beat.push(0);
        assert!(!output_beat_is_canonical(&cfg, &beat), "one word too many");
        let ice = ArrayConfig::ICE40; // one 22-bit word per beat
        assert!(output_beat_is_canonical(&ice, &[0x3F_FFFF]));
        assert!(!output_beat_is_canonical(&ice, &[0x40_0000]));
    }

    /// Column c of a tile is stream bits [c·R, (c+1)·R), whatever the beat width.
    #[test]
    fn weight_stream_is_column_major() {
        let mut cfg = ArrayConfig::SIM16;
        for wb in [1u32, 8, 16, 32, 256] {
            cfg.weight_beat_bits = wb;
            let beats = weight_tile_beats(&cfg, |r, c| (r * 7 + c * 3) % 5 == 0);
            assert_eq!(beats.len(), 256 / wb as usize);
            for c in 0..16 {
                for r in 0..16 {
                    let i = c * 16 + r;
                    assert_eq!(get_bit(&beats[i / wb as usize], i % wb as usize), (r * 7 + c * 3) % 5 == 0);
                }
            }
        }
    }

    #[test]
    fn framing_bytes_are_little_endian() {
        let mut out = vec![];
        framing::le_bytes(&[0x4433_2211, 0x0000_0055], 5, &mut out);
        assert_eq!(out, [0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(framing::le_words(&out), [0x4433_2211, 0x55]);
        assert_eq!(framing::payload_bytes(&ArrayConfig::ECP5), [4, 4, 64, 32]);
        assert_eq!(framing::output_beat_bytes(&ArrayConfig::ECP5), 104);
    }
}
