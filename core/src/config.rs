//! The one typed description of the accelerator's array, read by the HDL, the
//! reference and the driver alike (see docs/numerics.md for what each width means).
//!
//! Only free parameters are stored; every width that follows from them
//! (`lane_shift`, `psum_bits`, `acc_bits`, `h_shift`) is a method, so no width is
//! ever written twice and overflow is impossible for `K <= max_k`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Error returned when an [`ArrayConfig`] is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid array configuration: {0}")]
pub struct ConfigError(pub String);

/// Parameters of the sign-accumulate systolic array.
///
/// Rows run along the input dimension K (one activation lane per row), columns
/// along the output dimension N (one partial-sum column per output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArrayConfig {
    /// R: rows of processing elements (inputs per weight tile).
    pub rows: usize,
    /// C: columns of processing elements (outputs per weight tile).
    pub cols: usize,
    /// Bits of a quantised activation x_q (signed, two's complement).
    pub act_bits: u32,
    /// Bits of a quantised input scale g_q (signed).
    pub g_bits: u32,
    /// Bits of a lane, the rescaled product x_q·g_q that enters the array (signed).
    pub lane_bits: u32,
    /// Bits of a quantised output scale h_q (signed).
    pub h_bits: u32,
    /// Bits of an output word leaving the accelerator (signed, saturated).
    pub out_bits: u32,
    /// Sign bits carried by one beat of the weight stream.
    pub weight_beat_bits: u32,
    /// Largest input dimension K the accumulators are sized for.
    pub max_k: usize,
    /// Tokens one accumulator bank holds (M per TILE); the driver splits
    /// longer inputs into groups of at most this many tokens.
    pub acc_depth: usize,
    /// Weight banks in every PE (and g banks in every g scaler): the loader
    /// fills one bank while tokens of up to `weight_banks - 1` earlier tiles
    /// are still in the array, so the weight stream never waits for a tile
    /// to leave (docs/hardware.md derives why 3 suffice at M = 1).
    pub weight_banks: usize,
    /// Output words per beat of the output stream, and h scalers on the
    /// drain path; must divide `cols`. With `cols` a token's whole row leaves
    /// in one beat, so draining M tokens takes M cycles.
    pub out_words_per_beat: usize,
}

/// Accumulator banks per column: tokens of one N tile accumulate in one bank
/// while the other drains (ping-pong).
pub const ACC_BANKS: usize = 2;

/// Named presets: (name, config, what it is for).
pub const PRESET_NAMES: [&str; 3] = ["sim16", "ecp5", "ice40"];

/// ceil(log2(n)) for n >= 1 (0 for n = 1).
pub const fn clog2(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

impl ArrayConfig {
    /// 16×16 array for simulation (Verilator, rust-hdl).
    pub const SIM16: ArrayConfig = ArrayConfig {
        rows: 16,
        cols: 16,
        act_bits: 8,
        g_bits: 8,
        lane_bits: 12,
        h_bits: 16,
        out_bits: 26,
        weight_beat_bits: 16,
        max_k: 16384,
        acc_depth: 128,
        weight_banks: 3,
        out_words_per_beat: 16,
    };

    /// 32×32 array sized for a Lattice LFE5U-85F.
    pub const ECP5: ArrayConfig = ArrayConfig {
        rows: 32,
        cols: 32,
        act_bits: 8,
        g_bits: 8,
        lane_bits: 12,
        h_bits: 16,
        out_bits: 26,
        weight_beat_bits: 32,
        max_k: 16384,
        acc_depth: 256,
        weight_banks: 3,
        out_words_per_beat: 32,
    };

    /// 8×8 array sized for a Lattice iCE40 UP5K (5,280 LUT4, 8 DSP).
    pub const ICE40: ArrayConfig = ArrayConfig {
        rows: 8,
        cols: 8,
        act_bits: 8,
        g_bits: 8,
        lane_bits: 10,
        h_bits: 16,
        out_bits: 22,
        weight_beat_bits: 8,
        max_k: 4096,
        acc_depth: 64,
        weight_banks: 3,
        out_words_per_beat: 1,
    };

    /// 8×8 array for the iCEBreaker board's iCE40 UP5K, used by the bitstream
    /// flow (docs/bitstream.md): the `ICE40` array with 2 weight banks
    /// instead of 3 and accumulators for K up to 2048 (21 bits, out 21 bits)
    /// instead of 4096, which with the iCE40 forms of the g scalers (two
    /// rows per SB_MAC16) and of the accumulator RAMs (packed across
    /// columns) fits 5174 of the 5280 logic cells, 6 of 8 DSPs and 22 of 30
    /// block RAMs. The UART link (3 Mbaud, 0.3 MB/s) feeds weights far slower
    /// than the array takes them, so the third bank, which keeps the weight
    /// stream from waiting on tiles still in the array, would buy nothing on
    /// this board; K 2048 covers SmolLM2-135M (K ≤ 1536). The `ICE40` preset
    /// (3 banks, K 4096) needs 5601 (106 %).
    pub const ICE40_UP5K: ArrayConfig = ArrayConfig {
        max_k: 2048,
        out_bits: 21,
        weight_banks: 2,
        ..ArrayConfig::ICE40
    };

    /// A test configuration for the simulators, unlike every preset in the
    /// ways the general rules allow: weight beats (8 bits) wider than a
    /// column and not a multiple of R (so a beat spans columns), 2 weight
    /// banks, output beats of 2 of the 4 columns, narrow lanes and outputs
    /// so both saturations happen, shallow accumulators.
    pub const T6X4: ArrayConfig = ArrayConfig {
        rows: 6,
        cols: 4,
        act_bits: 8,
        g_bits: 8,
        lane_bits: 10,
        h_bits: 12,
        out_bits: 14,
        weight_beat_bits: 8,
        max_k: 200,
        acc_depth: 5,
        weight_banks: 2,
        out_words_per_beat: 2,
    };

    /// Any named configuration: a preset, the board configuration
    /// `ice40_up5k`, or a test configuration (`t6x4`).
    pub fn lookup(name: &str) -> Result<ArrayConfig, ConfigError> {
        match name {
            "ice40_up5k" => Ok(Self::ICE40_UP5K),
            "t6x4" => Ok(Self::T6X4),
            other => Self::preset(other),
        }
    }

    /// Look a preset up by name (`sim16`, `ecp5`, `ice40`).
    pub fn preset(name: &str) -> Result<ArrayConfig, ConfigError> {
        match name {
            "sim16" => Ok(Self::SIM16),
            "ecp5" => Ok(Self::ECP5),
            "ice40" => Ok(Self::ICE40),
            other => Err(ConfigError(format!(
                "unknown preset `{other}` (known: {})",
                PRESET_NAMES.join(", ")
            ))),
        }
    }

    /// Right shift applied to x_q·g_q before it becomes a lane: chosen so the
    /// largest symmetric product just fits the lane.
    pub const fn lane_shift(&self) -> u32 {
        (self.act_bits + self.g_bits - 1).saturating_sub(self.lane_bits)
    }

    /// Width of a partial sum inside the array: lane_bits + ceil(log2 R).
    /// Exact because lanes are saturated symmetrically to ±(2^(L-1) - 1).
    pub const fn psum_bits(&self) -> u32 {
        self.lane_bits + clog2(self.rows)
    }

    /// Width of an output accumulator summing across K tiles:
    /// lane_bits + ceil(log2 max_k).
    pub const fn acc_bits(&self) -> u32 {
        self.lane_bits + clog2(self.max_k)
    }

    /// Right shift applied to acc·h_q: h_bits - 1, so |output| <= |acc| and the
    /// output fits acc_bits whatever h_q is.
    pub const fn h_shift(&self) -> u32 {
        self.h_bits - 1
    }

    /// Width of the product acc·h_q before the shift.
    pub const fn h_product_bits(&self) -> u32 {
        self.acc_bits() + self.h_bits
    }

    /// Width of the product x_q·g_q before the lane shift.
    pub const fn g_product_bits(&self) -> u32 {
        self.act_bits + self.g_bits
    }

    /// Beats of the weight stream per R×C weight tile.
    pub const fn beats_per_tile(&self) -> usize {
        self.rows * self.cols / self.weight_beat_bits as usize
    }

    /// Bits of an activation beat: one token, rows·act_bits.
    pub const fn activation_beat_bits(&self) -> usize {
        self.rows * self.act_bits as usize
    }

    /// Bits of a scale beat: a tile's R g values (rows·g_bits) or a DRAIN's
    /// C h values (cols·h_bits), whichever is wider.
    pub const fn scale_beat_bits(&self) -> usize {
        let g = self.rows * self.g_bits as usize;
        let h = self.cols * self.h_bits as usize;
        if g > h {
            g
        } else {
            h
        }
    }

    /// Bits of an output beat: out_words_per_beat words of out_bits.
    pub const fn out_beat_bits(&self) -> usize {
        self.out_words_per_beat * self.out_bits as usize
    }

    /// Output beats per drained token: cols / out_words_per_beat.
    pub const fn out_beats_per_token(&self) -> usize {
        self.cols / self.out_words_per_beat
    }

    /// Largest positive value of a `bits`-wide symmetric signed quantity.
    pub const fn sym_max(bits: u32) -> i64 {
        (1i64 << (bits - 1)) - 1
    }

    /// Range of a `bits`-wide two's complement input port: [-2^(b-1), 2^(b-1)-1].
    pub const fn port_range(bits: u32) -> (i64, i64) {
        (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
    }

    /// Check every constraint; returns the config for chaining.
    pub fn validate(self) -> Result<Self, ConfigError> {
        let e = |m: String| Err(ConfigError(m));
        if !(1..=256).contains(&self.rows) {
            return e(format!("rows = {} must be in 1..=256", self.rows));
        }
        if !(1..=256).contains(&self.cols) {
            return e(format!("cols = {} must be in 1..=256", self.cols));
        }
        if !(4..=16).contains(&self.act_bits) {
            return e(format!("act_bits = {} must be in 4..=16", self.act_bits));
        }
        if !(2..=16).contains(&self.g_bits) {
            return e(format!("g_bits = {} must be in 2..=16", self.g_bits));
        }
        if !(2..=16).contains(&self.h_bits) {
            return e(format!("h_bits = {} must be in 2..=16", self.h_bits));
        }
        if !(2..=16).contains(&self.lane_bits) {
            return e(format!("lane_bits = {} must be in 2..=16", self.lane_bits));
        }
        if self.lane_bits > self.act_bits + self.g_bits - 1 {
            return e(format!(
                "lane_bits = {} exceeds act_bits + g_bits - 1 = {}: the extra bits would always be zero",
                self.lane_bits,
                self.act_bits + self.g_bits - 1
            ));
        }
        if !(1..=(1 << 24)).contains(&self.max_k) {
            return e(format!("max_k = {} must be in 1..=2^24", self.max_k));
        }
        if self.acc_bits() > 48 {
            return e(format!(
                "acc_bits = lane_bits + ceil(log2 max_k) = {} must be <= 48 so acc·h fits 64 bits",
                self.acc_bits()
            ));
        }
        if !(2..=self.acc_bits()).contains(&self.out_bits) {
            return e(format!(
                "out_bits = {} must be in 2..=acc_bits ({})",
                self.out_bits,
                self.acc_bits()
            ));
        }
        if !(1..=4096).contains(&self.acc_depth) {
            return e(format!("acc_depth = {} must be in 1..=4096", self.acc_depth));
        }
        if self.weight_beat_bits == 0
            || self.weight_beat_bits > 1024
            || (self.rows * self.cols) % self.weight_beat_bits as usize != 0
        {
            return e(format!(
                "weight_beat_bits = {} must be in 1..=1024 and divide rows·cols = {}",
                self.weight_beat_bits,
                self.rows * self.cols
            ));
        }
        if !(2..=4).contains(&self.weight_banks) {
            return e(format!("weight_banks = {} must be in 2..=4", self.weight_banks));
        }
        if self.out_words_per_beat == 0 || self.cols % self.out_words_per_beat != 0 {
            return e(format!(
                "out_words_per_beat = {} must divide cols = {}",
                self.out_words_per_beat, self.cols
            ));
        }
        Ok(self)
    }
}

impl fmt::Display for ArrayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}x{} array: act {}b, g {}b, lane {}b (shift {}), psum {}b, acc {}b (max K {}), h {}b (shift {}), out {}b, weight beat {}b, {} tokens per group, {} weight banks, {} output words per beat",
            self.rows,
            self.cols,
            self.act_bits,
            self.g_bits,
            self.lane_bits,
            self.lane_shift(),
            self.psum_bits(),
            self.acc_bits(),
            self.max_k,
            self.h_bits,
            self.h_shift(),
            self.out_bits,
            self.weight_beat_bits,
            self.acc_depth,
            self.weight_banks,
            self.out_words_per_beat
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate() {
        for name in PRESET_NAMES.iter().chain(&["ice40_up5k", "t6x4"]) {
            ArrayConfig::lookup(name).unwrap().validate().unwrap();
        }
        assert!(ArrayConfig::preset("nope").is_err());
        assert!(ArrayConfig::preset("t6x4").is_err());
        let t = ArrayConfig::T6X4;
        assert!(t.weight_beat_bits as usize != t.rows && t.weight_beat_bits as usize % t.rows != 0);
    }

    #[test]
    fn clog2_values() {
        assert_eq!(clog2(1), 0);
        assert_eq!(clog2(2), 1);
        assert_eq!(clog2(3), 2);
        assert_eq!(clog2(16), 4);
        assert_eq!(clog2(17), 5);
        assert_eq!(clog2(16384), 14);
    }

    #[test]
    fn derived_widths_of_sim16() {
        let c = ArrayConfig::SIM16;
        assert_eq!(c.lane_shift(), 3);
        assert_eq!(c.psum_bits(), 16);
        assert_eq!(c.acc_bits(), 26);
        assert_eq!(c.h_shift(), 15);
        assert_eq!(c.beats_per_tile(), 16);
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let mut c = ArrayConfig::SIM16;
        c.lane_bits = 16;
        assert!(c.validate().is_err());
        let mut c = ArrayConfig::SIM16;
        c.weight_beat_bits = 7;
        assert!(c.validate().is_err());
        let mut c = ArrayConfig::SIM16;
        c.out_bits = 27;
        assert!(c.validate().is_err());
        let mut c = ArrayConfig::SIM16;
        c.rows = 0;
        assert!(c.validate().is_err());
        let mut c = ArrayConfig::SIM16;
        c.out_words_per_beat = 3;
        assert!(c.validate().is_err());
        let mut c = ArrayConfig::SIM16;
        c.weight_banks = 1;
        assert!(c.validate().is_err());
    }

    #[test]
    fn beat_widths_of_the_presets() {
        let c = ArrayConfig::ECP5;
        assert_eq!(c.scale_beat_bits(), 32 * 16);
        assert_eq!(c.out_beat_bits(), 32 * 26);
        assert_eq!(c.out_beats_per_token(), 1);
        assert_eq!(c.activation_beat_bits(), 256);
        let c = ArrayConfig::ICE40;
        assert_eq!(c.scale_beat_bits(), 8 * 16);
        assert_eq!(c.out_beats_per_token(), 8);
    }
}
