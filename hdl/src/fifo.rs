//! `OutputFifo`: the accelerator's output stream buffer. The h scalers
//! write a beat into it whenever one leaves them (they never stall); the
//! consumer takes beats from its head register at its own pace. The
//! controller issues a drain read only when the FIFO has room for every
//! beat of the row (`Controller`'s credits), so a write never finds it full,
//! and the `taken` flag gives a credit back per beat taken.
//!
//! Ports (one clock; OB = out_beat_bits):
//! | port      | dir | width | meaning |
//! |-----------|-----|-------|---------|
//! | `clock`, `reset` | in | 1 | the clock; `reset` empties the FIFO |
//! | `wr`      | in  | 1     | write `wr_data` (never when full) |
//! | `wr_data` | in  | OB    | the beat |
//! | `o_data`  | out | OB    | the head beat (registered) |
//! | `o_valid` | out | 1     | the head holds a beat (registered) |
//! | `o_ready` | in  | 1     | the consumer takes the head beat when `o_valid` |
//! | `taken`   | out | 1     | `o_valid & o_ready`: a beat left |
//!
//! A beat written at the end of cycle c is on `o_data` from c + 2 when the
//! FIFO was empty (the storage is read into the head register a cycle
//! later). The storage is a memory with a registered read (block RAM or
//! LUT RAM plus the head register); its depth comes from
//! `timing::output_fifo_depth`.

use crate::util::twos;
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct OutputFifo<const OB: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub wr: Signal<In, Bit>,
    pub wr_data: Signal<In, Bits<OB>>,
    pub o_data: Signal<Out, Bits<OB>>,
    pub o_valid: Signal<Out, Bit>,
    pub o_ready: Signal<In, Bit>,
    pub taken: Signal<Out, Bit>,
    mem: Vec<DFF<Bits<OB>>>,
    head: DFF<Bits<OB>>,
    head_valid: DFF<Bit>,
    /// Write and read pointers into `mem`, with a wrap bit above the
    /// address: the storage is empty when they are equal (the head register
    /// is the FIFO's last place).
    wp: DFF<Bits<16>>,
    rp: DFF<Bits<16>>,
}

impl<const OB: usize> OutputFifo<OB> {
    /// A FIFO of `depth` beats (a power of two, at most 2^15).
    pub fn new(depth: usize) -> Self {
        assert!(depth.is_power_of_two() && depth >= 2 && depth <= 1 << 15, "FIFO depth {depth}");
        Self {
            clock: Default::default(),
            reset: Default::default(),
            wr: Default::default(),
            wr_data: Default::default(),
            o_data: Default::default(),
            o_valid: Default::default(),
            o_ready: Default::default(),
            taken: Default::default(),
            mem: (0..depth).map(|_| DFF::default()).collect(),
            head: Default::default(),
            head_valid: Default::default(),
            wp: Default::default(),
            rp: Default::default(),
        }
    }
}

impl<const OB: usize> Logic for OutputFifo<OB> {
    fn update(&mut self) {
        let clock = self.clock.val();
        for d in &mut self.mem {
            d.clock.next = clock;
        }
        self.head.clock.next = clock;
        self.head_valid.clock.next = clock;
        self.wp.clock.next = clock;
        self.rp.clock.next = clock;
        let depth = self.mem.len();
        // Pointers count modulo twice the depth (the wrap bit).
        let mask = 2 * depth as u64 - 1;
        let (wp, rp) = (self.wp.q.val().to_u64(), self.rp.q.val().to_u64());
        let head_valid = self.head_valid.q.val();
        let pop = head_valid && self.o_ready.val();
        let load = wp != rp && (!head_valid || pop);
        let wr = self.wr.val();
        self.o_data.next = self.head.q.val();
        self.o_valid.next = head_valid;
        self.taken.next = pop;
        for (i, d) in self.mem.iter_mut().enumerate() {
            d.d.next = if wr && i as u64 == wp % depth as u64 { self.wr_data.val() } else { d.q.val() };
        }
        self.head.d.next = if load { self.mem[(rp % depth as u64) as usize].q.val() } else { self.head.q.val() };
        let reset = self.reset.val();
        self.head_valid.d.next = !reset && (load || (head_valid && !pop));
        self.wp.d.next = twos::<16>(if reset { 0 } else { ((wp + wr as u64) & mask) as i64 });
        self.rp.d.next = twos::<16>(if reset { 0 } else { ((rp + load as u64) & mask) as i64 });
    }

    // What `update()` drives (written by hand: `#[hdl_gen]` would also
    // generate `hdl()`, which this block writes as Verilog).
    fn connect(&mut self) {
        for d in &mut self.mem {
            d.clock.connect();
            d.d.connect();
        }
        self.head.clock.connect();
        self.head.d.connect();
        self.head_valid.clock.connect();
        self.head_valid.d.connect();
        for d in [&mut self.wp, &mut self.rp] {
            d.clock.connect();
            d.d.connect();
        }
        self.o_data.connect();
        self.o_valid.connect();
        self.taken.connect();
    }

    fn hdl(&self) -> Verilog {
        // Written as Verilog (`update()` above is its rust-hdl model; the
        // co-simulation tests compare them).
        Verilog::Wrapper(Wrapper { code: output_fifo_verilog(OB, self.mem.len()), cores: String::new() })
    }
}

/// The FIFO's Verilog body: the storage `mem` written and read in their
/// own clocked blocks (so yosys infers a RAM with a registered read: LUT
/// RAM on the ECP5, block RAM on the iCE40), the head register and the
/// pointers (a wrap bit above the address: the storage is empty when they
/// are equal). Registers power up to 0. `no_rw_check`: the word read is
/// never the one written in the same cycle (a read needs the storage not
/// empty, so the read pointer trails the write pointer; a write never finds
/// it full), so yosys need not add read-during-write bypass logic.
pub fn output_fifo_verilog(ob: usize, depth: usize) -> String {
    let fa = depth.trailing_zeros() as usize;
    let (o1, d1, f1) = (ob - 1, depth - 1, fa - 1);
    format!(
        "(* no_rw_check *) reg [{o1}:0] mem [0:{d1}];
reg [{o1}:0] head;
reg head_valid;
reg [{fa}:0] wp;
reg [{fa}:0] rp;
wire pop = head_valid & o_ready;
wire load = (wp != rp) & (~head_valid | pop);
assign o_data = head;
assign o_valid = head_valid;
assign taken = pop;
initial begin
   head = {ob}'d0; head_valid = 1'd0; wp = {pw}'d0; rp = {pw}'d0;
end
always @(posedge clock) begin
   if (wr) mem[wp[{f1}:0]] <= wr_data;
end
always @(posedge clock) begin
   if (load) head <= mem[rp[{f1}:0]];
end
always @(posedge clock) begin
   if (wr) wp <= wp + 1'd1;
   if (load) rp <= rp + 1'd1;
   head_valid <= load | (head_valid & ~pop);
   if (reset) begin
      wp <= {pw}'d0; rp <= {pw}'d0; head_valid <= 1'd0;
   end
end
",
        pw = fa + 1,
    )
}
