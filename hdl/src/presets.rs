//! The accelerator instantiated for every named preset of `ArrayConfig`.

crate::accelerator_for!(sim16, ArrayConfig::SIM16);
crate::accelerator_for!(ecp5, ArrayConfig::ECP5);
crate::accelerator_for!(ice40, ArrayConfig::ICE40);

/// Small configurations for the heavy random tests (the same code serves
/// every configuration): each differs from the presets in beat width, bank
/// count, output beat width or lane and output widths.
pub mod small {
    use onebit_core::ArrayConfig;

    /// 4×4, 8-bit weight beats (2 per tile), 3 banks, whole-row output beats.
    pub const T4X4: ArrayConfig = ArrayConfig {
        rows: 4,
        cols: 4,
        act_bits: 8,
        g_bits: 8,
        lane_bits: 12,
        h_bits: 16,
        out_bits: 18,
        weight_beat_bits: 8,
        max_k: 256,
        acc_depth: 4,
        weight_banks: 3,
        out_words_per_beat: 4,
    };

    /// 4×3: rows ≠ cols, 4-bit beats (3 per tile), 2 banks, one word per
    /// output beat, narrow lanes and outputs so both saturations happen often.
    pub const T4X3: ArrayConfig = ArrayConfig {
        rows: 4,
        cols: 3,
        act_bits: 8,
        g_bits: 8,
        lane_bits: 9,
        h_bits: 12,
        out_bits: 10,
        weight_beat_bits: 4,
        max_k: 64,
        acc_depth: 5,
        weight_banks: 2,
        out_words_per_beat: 1,
    };

    /// 3×2 with 3-bit beats (not a power of two anywhere), 6-bit activations,
    /// 4 banks, whole-row output beats.
    pub const T3X2: ArrayConfig = ArrayConfig {
        rows: 3,
        cols: 2,
        act_bits: 6,
        g_bits: 7,
        lane_bits: 10,
        h_bits: 16,
        out_bits: 14,
        weight_beat_bits: 3,
        max_k: 100,
        acc_depth: 3,
        weight_banks: 4,
        out_words_per_beat: 2,
    };

    /// 1×1: the degenerate array (no skew, one column, one-bit beats).
    pub const T1X1: ArrayConfig = ArrayConfig {
        rows: 1,
        cols: 1,
        act_bits: 8,
        g_bits: 8,
        lane_bits: 8,
        h_bits: 16,
        out_bits: 12,
        weight_beat_bits: 1,
        max_k: 16,
        acc_depth: 2,
        weight_banks: 2,
        out_words_per_beat: 1,
    };

    crate::accelerator_for!(t4x4, crate::presets::small::T4X4);
    crate::accelerator_for!(t4x3, crate::presets::small::T4X3);
    crate::accelerator_for!(t3x2, crate::presets::small::T3X2);
    crate::accelerator_for!(t1x1, crate::presets::small::T1X1);
}

crate::accelerator_for!(t6x4, ArrayConfig::T6X4);
