//! `SystolicArray`: the R×C weight-stationary grid of [`SignAccumulatePe`]s,
//! with its west skew lines and the token tags that travel to the south edge.
//!
//! Tokens enter unskewed, one per cycle; row r's lane is delayed r cycles so
//! that PE(r, c) sees token m at cycle u_m + r + c (u_m: the cycle the token
//! was presented on `west_*`). Partial sums flow south; column c's sum for
//! token m leaves row R−1 at u_m + R + c, and the token's tags (`valid`,
//! `first`, `acc`) come out of `south_*` bit c in that same cycle, so the
//! output accumulators need no knowledge of the skew.
//!
//! Ports (one clock):
//! | port           | dir | width | meaning |
//! |----------------|-----|-------|---------|
//! | `clock`        | in  | 1     | the one clock |
//! | `west_lanes`   | in  | R·L   | one token's lanes, row r in bits [r·L, (r+1)·L) |
//! | `west_valid`   | in  | 1     | a token is presented this cycle |
//! | `west_first`   | in  | 1     | it is the first token of a RUN: shadow → active weights from it on |
//! | `west_acc`     | in  | 1     | its RUN has the ACC flag (add to the accumulators, else overwrite) |
//! | `shadow_beat`  | in  | WB    | one weight-stream beat (stream bit b·WB + j in bit j) |
//! | `shadow_shift` | in  | 1     | shift the beat into the shadow chain |
//! | `south_psums`  | out | C·P   | column c's partial sum in bits [c·P, (c+1)·P) |
//! | `south_valid`  | out | C     | bit c: column c's partial sum belongs to a token |
//! | `south_first`  | out | C     | bit c: ... to the first token of a RUN |
//! | `south_acc`    | out | C     | bit c: ... to a RUN with the ACC flag |
//!
//! Weight load: the shadow bits form one chain in stream order (PE index
//! i = c·R + r, the column-major order of the weight stream); every beat moves
//! each bit WB places down the chain and fills the top WB places, so after
//! R·C/WB beats stream bit i sits in PE i.

use crate::netlist::{parity, Netlist};
use crate::pe::SignAccumulatePe;
use rust_hdl::prelude::*;

const TAG_VALID: usize = 0;
const TAG_FIRST: usize = 1;
const TAG_ACC: usize = 2;

#[derive(Clone, Debug, LogicBlock)]
pub struct SystolicArray<
    const R: usize,
    const C: usize,
    const L: usize,
    const P: usize,
    const WB: usize,
    const RL: usize,
    const CP: usize,
> {
    pub clock: Signal<In, Clock>,
    pub west_lanes: Signal<In, Bits<RL>>,
    pub west_valid: Signal<In, Bit>,
    pub west_first: Signal<In, Bit>,
    pub west_acc: Signal<In, Bit>,
    pub shadow_beat: Signal<In, Bits<WB>>,
    pub shadow_shift: Signal<In, Bit>,
    pub south_psums: Signal<Out, Bits<CP>>,
    pub south_valid: Signal<Out, Bits<C>>,
    pub south_first: Signal<Out, Bits<C>>,
    pub south_acc: Signal<Out, Bits<C>>,
    pes: Vec<SignAccumulatePe<L, P>>,
    skew_lane: Vec<DFF<Bits<L>>>,
    skew_swap: Vec<DFF<Bit>>,
    tags: Vec<DFF<Bits<3>>>,
    west_tag: Signal<Local, Bits<3>>,
    unused_edges: Signal<Local, Bit>,
}

impl<
        const R: usize,
        const C: usize,
        const L: usize,
        const P: usize,
        const WB: usize,
        const RL: usize,
        const CP: usize,
    > SystolicArray<R, C, L, P, WB, RL, CP>
{
    pub fn new() -> Self {
        assert_eq!(RL, R * L, "RL must be R·L");
        assert_eq!(CP, C * P, "CP must be C·P");
        assert!(R >= 1 && C >= 1 && (R * C) % WB == 0, "WB must divide R·C");
        let skews = R * (R - 1) / 2;
        Self {
            clock: Default::default(),
            west_lanes: Default::default(),
            west_valid: Default::default(),
            west_first: Default::default(),
            west_acc: Default::default(),
            shadow_beat: Default::default(),
            shadow_shift: Default::default(),
            south_psums: Default::default(),
            south_valid: Default::default(),
            south_first: Default::default(),
            south_acc: Default::default(),
            pes: (0..R * C).map(|_| SignAccumulatePe::default()).collect(),
            skew_lane: (0..skews).map(|_| DFF::default()).collect(),
            skew_swap: (0..skews).map(|_| DFF::default()).collect(),
            tags: (0..R + C - 1).map(|_| DFF::default()).collect(),
            west_tag: Default::default(),
            unused_edges: Default::default(),
        }
    }

    /// PE index of (row, column): column-major, the weight stream's order.
    fn pe(r: usize, c: usize) -> usize {
        c * R + r
    }
    /// Index of the j-th skew register of row r (row r has r of them).
    fn skew(r: usize, j: usize) -> usize {
        r * (r - 1) / 2 + j
    }
    /// The tag register whose output lines up with column c's south sum.
    fn tag_for_column(c: usize) -> usize {
        R + c - 1
    }
}

impl<
        const R: usize,
        const C: usize,
        const L: usize,
        const P: usize,
        const WB: usize,
        const RL: usize,
        const CP: usize,
    > Default for SystolicArray<R, C, L, P, WB, RL, CP>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<
        const R: usize,
        const C: usize,
        const L: usize,
        const P: usize,
        const WB: usize,
        const RL: usize,
        const CP: usize,
    > Logic for SystolicArray<R, C, L, P, WB, RL, CP>
{
    fn update(&mut self) {
        let clock = self.clock.val();
        let lanes = self.west_lanes.val();
        let first = self.west_first.val();
        let shift = self.shadow_shift.val();
        let beat = self.shadow_beat.val();
        for d in &mut self.skew_lane {
            d.clock.next = clock;
        }
        for d in &mut self.skew_swap {
            d.clock.next = clock;
        }
        for d in &mut self.tags {
            d.clock.next = clock;
        }
        // West edge: row r through r skew registers.
        for r in 0..R {
            let lane = lanes.get_bits::<L>(r * L);
            let (a, s) = if r == 0 {
                (lane, first)
            } else {
                let k0 = Self::skew(r, 0);
                self.skew_lane[k0].d.next = lane;
                self.skew_swap[k0].d.next = first;
                for j in 1..r {
                    let k = Self::skew(r, j);
                    self.skew_lane[k].d.next = self.skew_lane[k - 1].q.val();
                    self.skew_swap[k].d.next = self.skew_swap[k - 1].q.val();
                }
                let last = Self::skew(r, r - 1);
                (self.skew_lane[last].q.val(), self.skew_swap[last].q.val())
            };
            let i = Self::pe(r, 0);
            self.pes[i].act_in.next = a;
            self.pes[i].swap_in.next = s;
        }
        for c in 0..C {
            for r in 0..R {
                let i = Self::pe(r, c);
                self.pes[i].clock.next = clock;
                self.pes[i].shadow_shift.next = shift;
                if c > 0 {
                    let w = Self::pe(r, c - 1);
                    self.pes[i].act_in.next = self.pes[w].act_out.val();
                    self.pes[i].swap_in.next = self.pes[w].swap_out.val();
                }
                self.pes[i].psum_in.next = if r == 0 {
                    Bits::<P>::default()
                } else {
                    self.pes[Self::pe(r - 1, c)].psum_out.val()
                };
                let n = R * C;
                self.pes[i].shadow_in.next = if i + WB < n {
                    self.pes[i + WB].shadow_out.val()
                } else {
                    beat.get_bit(i + WB - n)
                };
            }
        }
        // Tags: R + c registers to the south edge of column c.
        let mut tag = Bits::<3>::default();
        tag = tag.replace_bit(TAG_VALID, self.west_valid.val());
        tag = tag.replace_bit(TAG_FIRST, first);
        tag = tag.replace_bit(TAG_ACC, self.west_acc.val());
        self.west_tag.next = tag;
        self.tags[0].d.next = tag;
        for j in 1..self.tags.len() {
            self.tags[j].d.next = self.tags[j - 1].q.val();
        }
        let mut psums = Bits::<CP>::default();
        let (mut valid, mut firsts, mut accs) = (Bits::<C>::default(), Bits::<C>::default(), Bits::<C>::default());
        for c in 0..C {
            psums.set_bits::<P>(c * P, self.pes[Self::pe(R - 1, c)].psum_out.val());
            let t = self.tags[Self::tag_for_column(c)].q.val();
            valid = valid.replace_bit(c, t.get_bit(TAG_VALID));
            firsts = firsts.replace_bit(c, t.get_bit(TAG_FIRST));
            accs = accs.replace_bit(c, t.get_bit(TAG_ACC));
        }
        // Open outputs at the edges: the east column's act/swap, the shadow
        // chain's far end.
        let mut open = false;
        for r in 0..R {
            let i = Self::pe(r, C - 1);
            open ^= parity(self.pes[i].act_out.val()) ^ self.pes[i].swap_out.val();
        }
        for i in 0..WB.min(R * C) {
            open ^= self.pes[i].shadow_out.val();
        }
        self.unused_edges.next = open;
        self.south_psums.next = psums;
        self.south_valid.next = valid;
        self.south_first.next = firsts;
        self.south_acc.next = accs;
    }

    fn connect(&mut self) {
        for d in &mut self.skew_lane {
            d.clock.connect();
            d.d.connect();
        }
        for d in &mut self.skew_swap {
            d.clock.connect();
            d.d.connect();
        }
        for d in &mut self.tags {
            d.clock.connect();
            d.d.connect();
        }
        for p in &mut self.pes {
            p.clock.connect();
            p.act_in.connect();
            p.swap_in.connect();
            p.psum_in.connect();
            p.shadow_in.connect();
            p.shadow_shift.connect();
        }
        self.west_tag.connect();
        self.unused_edges.connect();
        self.south_psums.connect();
        self.south_valid.connect();
        self.south_first.connect();
        self.south_acc.connect();
    }

    fn hdl(&self) -> Verilog {
        let mut n = Netlist::default();
        for k in 0..self.skew_lane.len() {
            n.wire(&format!("skew_lane${k}$clock"), "clock");
            n.wire(&format!("skew_swap${k}$clock"), "clock");
        }
        for k in 0..self.tags.len() {
            n.wire(&format!("tags${k}$clock"), "clock");
        }
        for r in 0..R {
            let i = Self::pe(r, 0);
            if r == 0 {
                n.from_slice(&format!("pes${i}$act_in"), "west_lanes", 0, L);
                n.wire(&format!("pes${i}$swap_in"), "west_first");
            } else {
                let k0 = Self::skew(r, 0);
                n.from_slice(&format!("skew_lane${k0}$d"), "west_lanes", r * L, L);
                n.wire(&format!("skew_swap${k0}$d"), "west_first");
                for j in 1..r {
                    let k = Self::skew(r, j);
                    n.wire(&format!("skew_lane${k}$d"), &format!("skew_lane${}$q", k - 1));
                    n.wire(&format!("skew_swap${k}$d"), &format!("skew_swap${}$q", k - 1));
                }
                let last = Self::skew(r, r - 1);
                n.wire(&format!("pes${i}$act_in"), &format!("skew_lane${last}$q"));
                n.wire(&format!("pes${i}$swap_in"), &format!("skew_swap${last}$q"));
            }
        }
        let total = R * C;
        for c in 0..C {
            for r in 0..R {
                let i = Self::pe(r, c);
                n.wire(&format!("pes${i}$clock"), "clock");
                n.wire(&format!("pes${i}$shadow_shift"), "shadow_shift");
                if c > 0 {
                    let w = Self::pe(r, c - 1);
                    n.wire(&format!("pes${i}$act_in"), &format!("pes${w}$act_out"));
                    n.wire(&format!("pes${i}$swap_in"), &format!("pes${w}$swap_out"));
                }
                if r == 0 {
                    n.constant(&format!("pes${i}$psum_in"), Bits::<P>::default());
                } else {
                    n.wire(
                        &format!("pes${i}$psum_in"),
                        &format!("pes${}$psum_out", Self::pe(r - 1, c)),
                    );
                }
                if i + WB < total {
                    n.wire(&format!("pes${i}$shadow_in"), &format!("pes${}$shadow_out", i + WB));
                } else {
                    n.from_slice(&format!("pes${i}$shadow_in"), "shadow_beat", i + WB - total, 1);
                }
            }
        }
        n.into_slice("west_tag", TAG_VALID, 1, "west_valid");
        n.into_slice("west_tag", TAG_FIRST, 1, "west_first");
        n.into_slice("west_tag", TAG_ACC, 1, "west_acc");
        n.wire("tags$0$d", "west_tag");
        for j in 1..self.tags.len() {
            n.wire(&format!("tags${j}$d"), &format!("tags${}$q", j - 1));
        }
        for c in 0..C {
            n.into_slice("south_psums", c * P, P, &format!("pes${}$psum_out", Self::pe(R - 1, c)));
            let t = format!("tags${}$q", Self::tag_for_column(c));
            n.into_slice_from_slice("south_valid", c, &t, TAG_VALID);
            n.into_slice_from_slice("south_first", c, &t, TAG_FIRST);
            n.into_slice_from_slice("south_acc", c, &t, TAG_ACC);
        }
        n.sink("unused_edges", &Self::open_outputs());
        n.finish()
    }
}

impl<
        const R: usize,
        const C: usize,
        const L: usize,
        const P: usize,
        const WB: usize,
        const RL: usize,
        const CP: usize,
    > SystolicArray<R, C, L, P, WB, RL, CP>
{
    fn open_outputs() -> Vec<String> {
        let mut v = vec![];
        for r in 0..R {
            let i = Self::pe(r, C - 1);
            v.push(format!("pes${i}$act_out"));
            v.push(format!("pes${i}$swap_out"));
        }
        for i in 0..WB.min(R * C) {
            v.push(format!("pes${i}$shadow_out"));
        }
        v
    }
}
