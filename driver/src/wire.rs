//! The accelerator's wire format (docs/hardware.md): command words and the
//! packing of beats. Wide beats travel as little-endian `Vec<u32>` words (bit
//! i of the beat is bit i % 32 of word i / 32), which is also how Verilator
//! passes ports wider than 64 bits.

use onebit_core::ArrayConfig;

/// Command opcodes (bits [3:0] of a command word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// The next R scale beats become g_q for rows 0..R-1.
    LoadG = 1,
    /// The next C scale beats become h_q for columns 0..C-1.
    LoadH = 2,
    /// The next beats_per_tile weight beats fill the shadow weights.
    LoadW = 3,
    /// Swap in the shadow weights and run `count` tokens.
    Run = 4,
    /// Emit `count`·C output words, token-major.
    Drain = 5,
}

impl Opcode {
    pub fn from_bits(b: u32) -> Option<Opcode> {
        Some(match b {
            1 => Opcode::LoadG,
            2 => Opcode::LoadH,
            3 => Opcode::LoadW,
            4 => Opcode::Run,
            5 => Opcode::Drain,
            _ => return None,
        })
    }
}

/// Bit 4 of a command: RUN adds to the accumulators instead of overwriting them.
pub const ACC_FLAG: u32 = 1 << 4;
/// Width of the scale stream's data port.
pub const SCALE_BITS: u32 = 16;

/// One command: opcode, ACC flag, count (bits [31:16]).
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
    pub fn new(opcode: Opcode, acc: bool, count: u16) -> Self {
        Command { opcode, acc, count }
    }
    pub fn encode(&self) -> u32 {
        (self.opcode as u32) | if self.acc { ACC_FLAG } else { 0 } | ((self.count as u32) << 16)
    }
    pub fn decode(word: u32) -> Result<Command, DecodeError> {
        let opcode = Opcode::from_bits(word & 0xF).ok_or_else(|| DecodeError {
            word,
            problem: format!("unknown opcode {}", word & 0xF),
        })?;
        if word & 0xFFE0 != 0 {
            return Err(DecodeError {
                word,
                problem: "reserved bits [15:5] are set".into(),
            });
        }
        Ok(Command {
            opcode,
            acc: word & ACC_FLAG != 0,
            count: (word >> 16) as u16,
        })
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

/// One activation beat: row r's x_q as `act_bits` two's complement in bits
/// [r·A, (r+1)·A); rows past `xs.len()` are 0.
pub fn pack_activations(cfg: &ArrayConfig, xs: &[i32]) -> Vec<u32> {
    let a = cfg.act_bits as usize;
    let mut w = vec![0u32; words_for(cfg.rows * a)];
    for (r, &x) in xs.iter().enumerate().take(cfg.rows) {
        let u = x as u32 as u64;
        for b in 0..a {
            set_bit(&mut w, r * a + b, (u >> b) & 1 == 1);
        }
    }
    w
}

/// A scale beat: `v` two's complement in 16 bits (the hardware reads the low
/// g_bits or h_bits).
pub fn pack_scale(v: i32) -> u16 {
    v as i16 as u16
}

/// Sign-extend the low `bits` of `raw` (an output word).
pub fn sign_extend(raw: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn command_round_trips(op in 1u32..=5, acc: bool, count: u16) {
            let c = Command::new(Opcode::from_bits(op).unwrap(), acc, count);
            prop_assert_eq!(Command::decode(c.encode()).unwrap(), c);
        }
    }

    #[test]
    fn command_layout_and_bad_words() {
        assert_eq!(Command::new(Opcode::Run, true, 7).encode(), 0x0007_0014);
        assert_eq!(Command::new(Opcode::Drain, false, 1).encode(), 0x0001_0005);
        assert!(Command::decode(0x0000_0006).is_err());
        assert!(Command::decode(0x0000_0104).is_err());
    }

    #[test]
    fn activations_pack_two_complement_by_row() {
        let cfg = ArrayConfig::SIM16;
        let w = pack_activations(&cfg, &[-1, 2, -128, 127]);
        assert_eq!(w.len(), 4);
        assert_eq!(w[0], 0x7F80_02FF);
        assert_eq!(&w[1..], &[0, 0, 0]);
        assert_eq!(sign_extend(0x3FF_FFFF, 26), -1);
        assert_eq!(sign_extend(0x1FF_FFFF, 26), 0x1FF_FFFF);
        assert_eq!(pack_scale(-2), 0xFFFE);
    }
}
