//! The accelerator's pipeline depths: how many cycles each stage of a
//! token's and a drained word's path takes (docs/hardware.md, "Timing").
//! The controller's interlocks are derived from these, so a stage added to a
//! block changes one number here and every wait that depends on it.
//!
//! They are the same for every configuration and FPGA family: the blocks'
//! family forms (iCE40 SB_MAC16, ECP5 MULT18X18D) keep the generic forms'
//! timing, so the netlists of both replay the rust-hdl model cycle for cycle.

use onebit_core::ArrayConfig;

/// Cycles from a token's acceptance (its activations on `x_data`) until its
/// lanes leave the g scalers: the multiplier's input registers, its product
/// register, the rounded product, the saturated lane.
pub const LANE_LATENCY: usize = 4;

/// Cycles from an accumulator's read request (a token's tags, or the
/// drain's address) to its data. The generic form: two address registers
/// (the request fans out to every column's RAMs from a flip-flop), the
/// RAM's read register, a register after the bank select. The ECP5 form:
/// one address register, the block RAM with its output register, and a
/// fabric register after it (a DP16KD's data reaches logic elsewhere only
/// after a long route).
pub const ACC_READ_LATENCY: usize = 4;

/// Cycles by which a token's tags (valid, first, ACC, accumulator bank)
/// reach the accumulators ahead of its partial sums: the accumulators read
/// the token's word when its tags arrive, so the old sum is out of the RAM
/// when the partial sum arrives (no partial sum waits in a register). The
/// tags leave the controller `LANE_LATENCY − TAG_LEAD` cycles after the
/// token is accepted and travel the array's R-stage tag chain beside the
/// lanes' R rows.
pub const TAG_LEAD: usize = ACC_READ_LATENCY;

/// Register stages of the tags in the controller (see `TAG_LEAD`).
pub const TAG_STAGES: usize = LANE_LATENCY - TAG_LEAD;

/// The edge, counted from a read request's cycle e, at whose end the
/// accumulators' RAMs take its address: e + 2 in the generic form, e + 1
/// in the ECP5 form (one address register fewer, a data register more).
pub const ACC_READ_EDGE_GENERIC: usize = 2;
pub const ACC_READ_EDGE_ECP5: usize = 1;

/// The edge, counted from a token's tags' cycle e, at whose end its new
/// sum is written: its partial sum arrives at e + 4 and the sum register
/// loads then (every form).
pub const ACC_WRITE_EDGE: usize = TAG_LEAD + 1;

/// The fewest cycles between two tokens that update the same accumulator
/// word (the same token of consecutive tiles): the later one's read must
/// come after the earlier one's write, in every form; the ECP5 form reads
/// earliest. The accumulators do not forward; the controller spaces tiles
/// instead (`Interlocks::tile_spacing`).
pub const ACC_SPACING: usize = ACC_WRITE_EDGE + 1 - ACC_READ_EDGE_ECP5;

/// The same for the generic form alone (the rust-hdl model, Verilator,
/// Icarus), which reads an edge later: what `Wait::Spacing` tests against.
pub const ACC_SPACING_GENERIC: usize = ACC_WRITE_EDGE + 1 - ACC_READ_EDGE_GENERIC;

/// Pipeline stages of an h scaler, from the beat entering its input
/// registers to its word register: operands, product, (on the ECP5) the
/// low part rounded, the whole rounded product, its saturation tests, the
/// saturated word.
pub const H_STAGES: usize = 6;

/// Cycles from a drain read (its address to the accumulator RAMs) until
/// that row's first beat enters the h scalers: the read, the row register.
pub const ROW_TO_POP: usize = ACC_READ_LATENCY + 1;

/// Words the output FIFO holds: every beat of a drained row is reserved
/// there when its read is issued (so the h scalers never stall), and 16
/// cover the round trip (read, row, h scalers, FIFO, consumer) so that a
/// consumer ready every cycle takes a beat every cycle.
pub const fn output_fifo_depth(cfg: &ArrayConfig) -> usize {
    let nob = cfg.out_beats_per_token();
    let mut d = 16;
    while d < nob {
        d *= 2;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_holds_a_row_and_the_round_trip() {
        for cfg in [ArrayConfig::SIM16, ArrayConfig::ECP5, ArrayConfig::ICE40, ArrayConfig::T6X4] {
            let d = output_fifo_depth(&cfg);
            assert!(d.is_power_of_two() && d >= cfg.out_beats_per_token());
            // read issue → row → h scalers → FIFO → taken → credit back.
            assert!(d >= ROW_TO_POP + H_STAGES + 3);
        }
    }
}
