//! `OneBitAccelerator`: the top (`top` in Verilog) that ties the blocks
//! together. See docs/hardware.md for the protocol and timing.
//!
//! Ports (one clock; every stream is valid/ready, a beat moves in a cycle where
//! both are high; readies depend only on state, never on the valids):
//! | port        | dir | width            | meaning |
//! |-------------|-----|------------------|---------|
//! | `clock`     | in  | 1                | the one clock; registers power up to 0 |
//! | `reset`     | in  | 1                | synchronous: while high, every unit returns to idle and empty (weights and accumulator words are kept but never read before they are written again) |
//! | `cmd_data`  | in  | 32               | command: [3:0] opcode, [4] ACC, [31:16] count |
//! | `cmd_valid`, `cmd_ready` | in, out | 1 | command stream |
//! | `w_data`    | in  | weight_beat_bits | weight beat, stream bits LSB first |
//! | `w_valid`, `w_ready` | in, out | 1   | weight stream |
//! | `s_data`    | in  | scale_beat_bits  | a TILE's g (row r in [r·G, (r+1)·G)) or a DRAIN's h (column c in [c·H, (c+1)·H)) |
//! | `s_valid`, `s_ready` | in, out | 1   | scale stream |
//! | `x_data`    | in  | rows·act_bits    | one token: row r's x_q in bits [r·A, (r+1)·A) |
//! | `x_valid`, `x_ready` | in, out | 1   | activation stream |
//! | `o_data`    | out | out_beat_bits    | out_words_per_beat output words, word j in [j·O, (j+1)·O) |
//! | `o_valid`, `o_ready` | out, in | 1   | output stream |
//!
//! Children: `ctl` ([`Controller`]), `gscalers` ([`GScalerBank`]: R g scalers), `array`
//! ([`SystolicArray`]), `accs` ([`AccumulatorBank`]: C column accumulators), `row` (C registers:
//! the drained token's sums), `h0`/`h1` (C registers each: the h banks of the
//! two accumulator banks), `hscalers` (out_words_per_beat × [`HScaler`]).

use crate::accumulator::AccumulatorBank;
use crate::array::SystolicArray;
use crate::controller::{Controller, Interlocks};
use crate::fifo::OutputFifo;
use crate::gscaler::GScalerBank;
use crate::hscaler::HScaler;
use crate::netlist::{parity, Netlist};
use onebit_core::ArrayConfig;
use rust_hdl::prelude::*;

/// Problems building an accelerator for a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Config(#[from] onebit_core::ConfigError),
    #[error("the hardware supports {what}; this configuration has {got}")]
    Unsupported { what: String, got: String },
    #[error("const widths {consts} do not match the configuration {cfg}")]
    Mismatch { consts: String, cfg: String },
}

/// The const widths of one configuration, in this order: R, C, A, G, L, P,
/// ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB.
pub const WIDTHS: usize = 21;

#[derive(LogicBlock)]
pub struct OneBitAccelerator<
    const R: usize,
    const C: usize,
    const A: usize,
    const G: usize,
    const L: usize,
    const P: usize,
    const ACC: usize,
    const H: usize,
    const O: usize,
    const WB: usize,
    const X: usize,
    const AD: usize,
    const RL: usize,
    const CP: usize,
    const CA: usize,
    const NB: usize,
    const B: usize,
    const OW: usize,
    const NOB: usize,
    const S: usize,
    const OB: usize,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub cmd_data: Signal<In, Bits<32>>,
    pub cmd_valid: Signal<In, Bit>,
    pub cmd_ready: Signal<Out, Bit>,
    pub w_data: Signal<In, Bits<WB>>,
    pub w_valid: Signal<In, Bit>,
    pub w_ready: Signal<Out, Bit>,
    pub s_data: Signal<In, Bits<S>>,
    pub s_valid: Signal<In, Bit>,
    pub s_ready: Signal<Out, Bit>,
    pub x_data: Signal<In, Bits<X>>,
    pub x_valid: Signal<In, Bit>,
    pub x_ready: Signal<Out, Bit>,
    pub o_data: Signal<Out, Bits<OB>>,
    pub o_valid: Signal<Out, Bit>,
    pub o_ready: Signal<In, Bit>,
    ctl: Controller<AD, NB, B, NOB>,
    gscalers: GScalerBank<R, A, G, L, NB, X, S, RL>,
    array: SystolicArray<R, C, L, P, WB, NB, B, RL, CP>,
    accs: AccumulatorBank<C, P, ACC, AD, CP, CA>,
    row: Vec<DFF<Bits<ACC>>>,
    h0: Vec<DFF<Bits<H>>>,
    h1: Vec<DFF<Bits<H>>>,
    hscalers: Vec<HScaler<ACC, H, O>>,
    fifo: OutputFifo<OB>,
    unused_inputs: Signal<Local, Bit>,
}

/// Address bits of an accumulator RAM: ceil(log2 acc_depth), at least 1.
pub const fn acc_address_bits(cfg: &ArrayConfig) -> usize {
    let b = onebit_core::config::clog2(cfg.acc_depth) as usize;
    if b == 0 {
        1
    } else {
        b
    }
}

impl<
        const R: usize,
        const C: usize,
        const A: usize,
        const G: usize,
        const L: usize,
        const P: usize,
        const ACC: usize,
        const H: usize,
        const O: usize,
        const WB: usize,
        const X: usize,
        const AD: usize,
        const RL: usize,
        const CP: usize,
        const CA: usize,
        const NB: usize,
        const B: usize,
        const OW: usize,
        const NOB: usize,
        const S: usize,
        const OB: usize,
    > OneBitAccelerator<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB>
{
    /// The const widths this type was instantiated with (see [`WIDTHS`]).
    pub fn widths() -> [usize; WIDTHS] {
        [R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB]
    }

    /// The widths `cfg` calls for (see [`WIDTHS`]).
    pub fn widths_of(cfg: &ArrayConfig) -> [usize; WIDTHS] {
        [
            cfg.rows,
            cfg.cols,
            cfg.act_bits as usize,
            cfg.g_bits as usize,
            cfg.lane_bits as usize,
            cfg.psum_bits() as usize,
            cfg.acc_bits() as usize,
            cfg.h_bits as usize,
            cfg.out_bits as usize,
            cfg.weight_beat_bits as usize,
            cfg.activation_beat_bits(),
            acc_address_bits(cfg),
            cfg.rows * cfg.lane_bits as usize,
            cfg.cols * cfg.psum_bits() as usize,
            cfg.cols * cfg.acc_bits() as usize,
            cfg.weight_banks,
            cfg.beats_per_tile(),
            cfg.out_words_per_beat,
            cfg.out_beats_per_token(),
            cfg.scale_beat_bits(),
            cfg.out_beat_bits(),
        ]
    }

    /// Build the accelerator for `cfg`, which must be the configuration the
    /// const widths were derived from (the `accelerator_for!` macro does that).
    pub fn new(cfg: &ArrayConfig) -> Result<Self, BuildError> {
        Self::with_interlocks(cfg, Interlocks::default())
    }

    /// [`OneBitAccelerator::new`] with some interlocks switched off: only the
    /// tests that show each interlock is needed do this.
    pub fn with_interlocks(cfg: &ArrayConfig, locks: Interlocks) -> Result<Self, BuildError> {
        let cfg = cfg.validate()?;
        if Self::widths() != Self::widths_of(&cfg) {
            return Err(BuildError::Mismatch {
                consts: format!("{:?}", Self::widths()),
                cfg: cfg.to_string(),
            });
        }
        if cfg.acc_bits() > 32 {
            return Err(BuildError::Unsupported {
                what: "acc_bits <= 32 (the h product uses two 16×16 multipliers)".into(),
                got: format!("acc_bits = {}", cfg.acc_bits()),
            });
        }
        if cfg.act_bits + cfg.g_bits > 32 {
            return Err(BuildError::Unsupported {
                what: "act_bits + g_bits <= 32".into(),
                got: format!("{} + {}", cfg.act_bits, cfg.g_bits),
            });
        }
        if cfg.acc_depth > 1 << 15 || cfg.beats_per_tile() > u16::MAX as usize || cfg.rows + 3 > 1 << 15 {
            return Err(BuildError::Unsupported {
                what: "16-bit counters".into(),
                got: cfg.to_string(),
            });
        }
        Ok(Self {
            clock: Default::default(),
            reset: Default::default(),
            cmd_data: Default::default(),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            w_data: Default::default(),
            w_valid: Default::default(),
            w_ready: Default::default(),
            s_data: Default::default(),
            s_valid: Default::default(),
            s_ready: Default::default(),
            x_data: Default::default(),
            x_valid: Default::default(),
            x_ready: Default::default(),
            o_data: Default::default(),
            o_valid: Default::default(),
            o_ready: Default::default(),
            ctl: Controller::new(&cfg, locks),
            gscalers: GScalerBank::new(&cfg),
            array: SystolicArray::new(),
            accs: AccumulatorBank::new(),
            row: (0..C).map(|_| DFF::default()).collect(),
            h0: (0..C).map(|_| DFF::default()).collect(),
            h1: (0..C).map(|_| DFF::default()).collect(),
            hscalers: (0..OW).map(|_| HScaler::new(&cfg)).collect(),
            fifo: OutputFifo::new(crate::timing::output_fifo_depth(&cfg)),
            unused_inputs: Default::default(),
        })
    }
}

impl<
        const R: usize,
        const C: usize,
        const A: usize,
        const G: usize,
        const L: usize,
        const P: usize,
        const ACC: usize,
        const H: usize,
        const O: usize,
        const WB: usize,
        const X: usize,
        const AD: usize,
        const RL: usize,
        const CP: usize,
        const CA: usize,
        const NB: usize,
        const B: usize,
        const OW: usize,
        const NOB: usize,
        const S: usize,
        const OB: usize,
    > Logic for OneBitAccelerator<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB>
{
    fn update(&mut self) {
        let clock = self.clock.val();
        let reset = self.reset.val();
        let ctl = &mut self.ctl;
        ctl.clock.next = clock;
        ctl.reset.next = reset;
        ctl.cmd_data.next = self.cmd_data.val();
        ctl.cmd_valid.next = self.cmd_valid.val();
        ctl.s_valid.next = self.s_valid.val();
        ctl.w_valid.next = self.w_valid.val();
        ctl.x_valid.next = self.x_valid.val();
        ctl.o_taken.next = self.fifo.taken.val();
        self.cmd_ready.next = ctl.cmd_ready.val();
        self.s_ready.next = ctl.s_ready.val();
        self.w_ready.next = ctl.w_ready.val();
        self.x_ready.next = ctl.x_ready.val();
        let (g_wr, h_wr, run_sel) = (ctl.g_wr.val(), ctl.h_wr.val(), ctl.run_sel.val());
        let (pop, row_load, pop_beat, pop_bank) = (ctl.pop.val(), ctl.row_load.val(), ctl.pop_beat.val(), ctl.pop_bank.val());
        let scale = self.s_data.val();
        // West: g scalers and the lanes they feed.
        let x = self.x_data.val();
        let g = &mut self.gscalers;
        g.clock.next = clock;
        g.x_in.next = x;
        g.g_in.next = scale;
        g.g_wr.next = g_wr;
        g.sel.next = run_sel;
        let lanes = g.lane_out.val();
        let array = &mut self.array;
        array.clock.next = clock;
        array.reset.next = reset;
        array.west_lanes.next = lanes;
        array.west_sel.next = self.ctl.lane_sel.val();
        array.west_valid.next = self.ctl.tag_valid.val();
        array.west_first.next = self.ctl.tag_first.val();
        array.west_acc.next = self.ctl.tag_acc.val();
        array.west_accbank.next = self.ctl.tag_accbank.val();
        array.w_fire.next = self.ctl.w_fire.val();
        array.w_group.next = self.ctl.w_group.val();
        array.w_bank.next = self.ctl.w_bank.val();
        array.w_data.next = self.w_data.val();
        // South: one accumulator per column (the tags arrive ahead of the
        // sums), the row register and the h banks.
        let psums = array.south_psums.val();
        let (valid, first, acc, accbank) = (
            array.south_valid.val(),
            array.south_first.val(),
            array.south_acc.val(),
            array.south_accbank.val(),
        );
        let a = &mut self.accs;
        a.clock.next = clock;
        a.reset.next = reset;
        a.psum_in.next = psums;
        a.valid_in.next = valid;
        a.first_in.next = first;
        a.acc_in.next = acc;
        a.bank_in.next = accbank;
        a.drain_rd.next = self.ctl.drain_rd.val();
        a.drain_bank.next = self.ctl.drain_bank.val();
        a.drain_addr.next = self.ctl.drain_addr.val();
        let sums = a.acc_out.val();
        for c in 0..C {
            self.row[c].clock.next = clock;
            // With one beat per row the row register loads every cycle (a
            // row pops the cycle after it arrives): no enable over C words.
            self.row[c].d.next = if row_load || NOB == 1 { sums.get_bits::<ACC>(c * ACC) } else { self.row[c].q.val() };
            let h = scale.get_bits::<H>(c * H);
            self.h0[c].clock.next = clock;
            self.h1[c].clock.next = clock;
            self.h0[c].d.next = if h_wr.get_bit(0) { h } else { self.h0[c].q.val() };
            self.h1[c].d.next = if h_wr.get_bit(1) { h } else { self.h1[c].q.val() };
        }
        // Drain path: beat i of a row carries columns [i·OW, (i+1)·OW); the
        // h scalers take a beat every cycle (`pop` marks a real one).
        let beat = (0..NOB).find(|&i| pop_beat.get_bit(i)).unwrap_or(0);
        let mut out = Bits::<OB>::default();
        for j in 0..OW {
            let col = beat * OW + j;
            let hs = &mut self.hscalers[j];
            hs.clock.next = clock;
            hs.reset.next = reset;
            hs.valid_in.next = pop;
            hs.acc_in.next = self.row[col].q.val();
            hs.h_in.next = if pop_bank { self.h1[col].q.val() } else { self.h0[col].q.val() };
            out.set_bits::<O>(j * O, hs.word_out.val());
        }
        let f = &mut self.fifo;
        f.clock.next = clock;
        f.reset.next = reset;
        f.wr.next = self.hscalers[0].valid_out.val();
        f.wr_data.next = out;
        f.o_ready.next = self.o_ready.val();
        self.o_data.next = f.o_data.val();
        self.o_valid.next = f.o_valid.val();
        // Scale bits above the g or h fields are unused, pop_beat's bit 0 is
        // the default beat (no test needed), row_load is implied with one
        // beat per row, and the h scalers move in lockstep, so only the
        // first one's valid is read.
        let mut unused = parity(scale) ^ parity(pop_beat) ^ row_load;
        for j in 1..OW {
            unused ^= self.hscalers[j].valid_out.val();
        }
        self.unused_inputs.next = unused;
    }

    fn connect(&mut self) {
        let c = &mut self.ctl;
        for s in [
            &mut c.reset,
            &mut c.cmd_valid,
            &mut c.s_valid,
            &mut c.w_valid,
            &mut c.x_valid,
            &mut c.o_taken,
        ] {
            s.connect();
        }
        c.clock.connect();
        c.cmd_data.connect();
        self.cmd_ready.connect();
        self.s_ready.connect();
        self.w_ready.connect();
        self.x_ready.connect();
        let g = &mut self.gscalers;
        g.clock.connect();
        g.x_in.connect();
        g.g_in.connect();
        g.g_wr.connect();
        g.sel.connect();
        let a = &mut self.array;
        a.clock.connect();
        a.reset.connect();
        a.west_lanes.connect();
        a.west_sel.connect();
        a.west_valid.connect();
        a.west_first.connect();
        a.west_acc.connect();
        a.west_accbank.connect();
        a.w_fire.connect();
        a.w_group.connect();
        a.w_bank.connect();
        a.w_data.connect();
        let a = &mut self.accs;
        a.clock.connect();
        a.reset.connect();
        a.psum_in.connect();
        a.valid_in.connect();
        a.first_in.connect();
        a.acc_in.connect();
        a.bank_in.connect();
        a.drain_rd.connect();
        a.drain_bank.connect();
        a.drain_addr.connect();
        for d in self.row.iter_mut() {
            d.clock.connect();
            d.d.connect();
        }
        for d in self.h0.iter_mut().chain(self.h1.iter_mut()) {
            d.clock.connect();
            d.d.connect();
        }
        for h in &mut self.hscalers {
            h.clock.connect();
            h.reset.connect();
            h.valid_in.connect();
            h.acc_in.connect();
            h.h_in.connect();
        }
        let f = &mut self.fifo;
        f.clock.connect();
        f.reset.connect();
        f.wr.connect();
        f.wr_data.connect();
        f.o_ready.connect();
        self.o_data.connect();
        self.o_valid.connect();
        self.unused_inputs.connect();
    }

    fn hdl(&self) -> Verilog {
        let mut n = Netlist::default();
        for (port, src) in [
            ("ctl$clock", "clock"),
            ("ctl$reset", "reset"),
            ("ctl$cmd_data", "cmd_data"),
            ("ctl$cmd_valid", "cmd_valid"),
            ("ctl$s_valid", "s_valid"),
            ("ctl$w_valid", "w_valid"),
            ("ctl$x_valid", "x_valid"),
            ("ctl$o_taken", "fifo$taken"),
            ("cmd_ready", "ctl$cmd_ready"),
            ("s_ready", "ctl$s_ready"),
            ("w_ready", "ctl$w_ready"),
            ("x_ready", "ctl$x_ready"),
        ] {
            n.wire(port, src);
        }
        for (port, src) in [
            ("gscalers$clock", "clock"),
            ("gscalers$x_in", "x_data"),
            ("gscalers$g_in", "s_data"),
            ("gscalers$g_wr", "ctl$g_wr"),
            ("gscalers$sel", "ctl$run_sel"),
        ] {
            n.wire(port, src);
        }
        for (port, src) in [
            ("array$clock", "clock"),
            ("array$reset", "reset"),
            ("array$west_lanes", "gscalers$lane_out"),
            ("array$west_sel", "ctl$lane_sel"),
            ("array$west_valid", "ctl$tag_valid"),
            ("array$west_first", "ctl$tag_first"),
            ("array$west_acc", "ctl$tag_acc"),
            ("array$west_accbank", "ctl$tag_accbank"),
            ("array$w_fire", "ctl$w_fire"),
            ("array$w_group", "ctl$w_group"),
            ("array$w_bank", "ctl$w_bank"),
            ("array$w_data", "w_data"),
        ] {
            n.wire(port, src);
        }
        for (port, src) in [
            ("clock", "clock"),
            ("reset", "reset"),
            ("psum_in", "array$south_psums"),
            ("valid_in", "array$south_valid"),
            ("first_in", "array$south_first"),
            ("acc_in", "array$south_acc"),
            ("bank_in", "array$south_accbank"),
            ("drain_rd", "ctl$drain_rd"),
            ("drain_bank", "ctl$drain_bank"),
            ("drain_addr", "ctl$drain_addr"),
        ] {
            n.wire(&format!("accs${port}"), src);
        }
        for c in 0..C {
            // Row register and h banks: defaults first, then the loads, as
            // the `if`s of update() read.
            n.wire(&format!("row${c}$clock"), "clock");
            if NOB == 1 {
                n.from_slice(&format!("row${c}$d"), "accs$acc_out", c * ACC, ACC);
            } else {
                n.wire(&format!("row${c}$d"), &format!("row${c}$q"));
                n.when("ctl$row_load", |n| n.from_slice(&format!("row${c}$d"), "accs$acc_out", c * ACC, ACC));
            }
            for (bank, name) in [(0, "h0"), (1, "h1")] {
                n.wire(&format!("{name}${c}$clock"), "clock");
                n.wire(&format!("{name}${c}$d"), &format!("{name}${c}$q"));
                n.when_bit("ctl$h_wr", bank, |n| n.from_slice(&format!("{name}${c}$d"), "s_data", c * H, H));
            }
        }
        for j in 0..OW {
            let hs = format!("hscalers${j}");
            for (port, src) in [("clock", "clock"), ("reset", "reset"), ("valid_in", "ctl$pop")] {
                n.wire(&format!("{hs}${port}"), src);
            }
            // Beat 0 is the default; beat i (one-hot pop_beat) overrides it.
            let (acc, h) = (format!("{hs}$acc_in"), format!("{hs}$h_in"));
            n.wire(&acc, &format!("row${j}$q"));
            n.wire(&h, &format!("h0${j}$q"));
            n.when("ctl$pop_bank", |n| n.wire(&h, &format!("h1${j}$q")));
            for i in 1..NOB {
                let col = i * OW + j;
                n.when_bit("ctl$pop_beat", i, |n| {
                    n.wire(&acc, &format!("row${col}$q"));
                    n.wire(&h, &format!("h0${col}$q"));
                    n.when("ctl$pop_bank", |n| n.wire(&h, &format!("h1${col}$q")));
                });
            }
            n.into_slice("fifo$wr_data", j * O, O, &format!("{hs}$word_out"));
        }
        for (port, src) in [
            ("fifo$clock", "clock"),
            ("fifo$reset", "reset"),
            ("fifo$wr", "hscalers$0$valid_out"),
            ("fifo$o_ready", "o_ready"),
            ("o_data", "fifo$o_data"),
            ("o_valid", "fifo$o_valid"),
        ] {
            n.wire(port, src);
        }
        let mut unused = vec!["s_data".to_string(), "ctl$pop_beat".to_string(), "ctl$row_load".to_string()];
        unused.extend((1..OW).map(|j| format!("hscalers${j}$valid_out")));
        n.sink("unused_inputs", &unused);
        n.finish()
    }
}

/// Define a module with the const widths of one `ArrayConfig` and a type alias
/// `Accelerator` for the accelerator built from them, so that every width is
/// written once, in the config:
/// `onebit_hdl::accelerator_for!(sim16, onebit_core::ArrayConfig::SIM16);`
#[macro_export]
macro_rules! accelerator_for {
    ($name:ident, $cfg:expr) => {
        pub mod $name {
            use onebit_core::ArrayConfig;
            pub const CONFIG: ArrayConfig = $cfg;
            pub const R: usize = CONFIG.rows;
            pub const C: usize = CONFIG.cols;
            pub const A: usize = CONFIG.act_bits as usize;
            pub const G: usize = CONFIG.g_bits as usize;
            pub const L: usize = CONFIG.lane_bits as usize;
            pub const P: usize = CONFIG.psum_bits() as usize;
            pub const ACC: usize = CONFIG.acc_bits() as usize;
            pub const H: usize = CONFIG.h_bits as usize;
            pub const O: usize = CONFIG.out_bits as usize;
            pub const WB: usize = CONFIG.weight_beat_bits as usize;
            pub const X: usize = CONFIG.activation_beat_bits();
            pub const AD: usize = $crate::top::acc_address_bits(&CONFIG);
            pub const RL: usize = R * L;
            pub const CP: usize = C * P;
            pub const CA: usize = C * ACC;
            pub const NB: usize = CONFIG.weight_banks;
            pub const B: usize = CONFIG.beats_per_tile();
            pub const OW: usize = CONFIG.out_words_per_beat;
            pub const NOB: usize = CONFIG.out_beats_per_token();
            pub const S: usize = CONFIG.scale_beat_bits();
            pub const OB: usize = CONFIG.out_beat_bits();
            pub type Accelerator =
                $crate::OneBitAccelerator<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB>;
            /// The accelerator for this configuration, connected and ready to simulate.
            pub fn build() -> Result<Accelerator, $crate::top::BuildError> {
                build_with(Default::default())
            }
            /// [`build`] with some interlocks switched off (tests only).
            pub fn build_with(locks: $crate::controller::Interlocks) -> Result<Accelerator, $crate::top::BuildError> {
                use $crate::rust_hdl::prelude::Block;
                let mut a = Accelerator::with_interlocks(&CONFIG, locks)?;
                a.connect_all();
                Ok(a)
            }
        }
    };
}
