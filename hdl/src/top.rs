//! `OneBitAccelerator`: the top (`top` in Verilog) that ties the blocks
//! together. See docs/hardware.md for the protocol and timing.
//!
//! Ports (one clock; every stream is valid/ready, a beat moves in a cycle where
//! both are high; readies depend only on state, never on the valids):
//! | port        | dir | width            | meaning |
//! |-------------|-----|------------------|---------|
//! | `clock`     | in  | 1                | the one clock; registers power up to 0 (no reset port) |
//! | `cmd_data`  | in  | 32               | command: [3:0] opcode, [4] ACC, [31:16] count |
//! | `cmd_valid`, `cmd_ready` | in, out | 1 | command stream |
//! | `w_data`    | in  | weight_beat_bits | weight beat, stream bits LSB first |
//! | `w_valid`, `w_ready` | in, out | 1   | weight stream |
//! | `s_data`    | in  | 16               | g_q or h_q, two's complement in the low g_bits / h_bits |
//! | `s_valid`, `s_ready` | in, out | 1   | scale stream |
//! | `x_data`    | in  | rows·act_bits    | one token: row r's x_q in bits [r·A, (r+1)·A) |
//! | `x_valid`, `x_ready` | in, out | 1   | activation stream |
//! | `o_data`    | out | out_bits         | one output word (two's complement) |
//! | `o_valid`, `o_ready` | out, in | 1   | output stream |
//!
//! Children: `ctl` ([`Controller`]), `gscalers` (R × [`GScaler`]), `array`
//! ([`SystolicArray`]), `accs` (C × [`OutputAccumulator`]), `row` (C registers:
//! the drained token's sums), `h` (C registers: h_q, a chain for LOAD_H and a
//! ring while draining), `hscaler` ([`HScaler`]).

use crate::accumulator::OutputAccumulator;
use crate::array::SystolicArray;
use crate::controller::Controller;
use crate::gscaler::GScaler;
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
> {
    pub clock: Signal<In, Clock>,
    pub cmd_data: Signal<In, Bits<32>>,
    pub cmd_valid: Signal<In, Bit>,
    pub cmd_ready: Signal<Out, Bit>,
    pub w_data: Signal<In, Bits<WB>>,
    pub w_valid: Signal<In, Bit>,
    pub w_ready: Signal<Out, Bit>,
    pub s_data: Signal<In, Bits<16>>,
    pub s_valid: Signal<In, Bit>,
    pub s_ready: Signal<Out, Bit>,
    pub x_data: Signal<In, Bits<X>>,
    pub x_valid: Signal<In, Bit>,
    pub x_ready: Signal<Out, Bit>,
    pub o_data: Signal<Out, Bits<O>>,
    pub o_valid: Signal<Out, Bit>,
    pub o_ready: Signal<In, Bit>,
    ctl: Controller<AD>,
    gscalers: Vec<GScaler<A, G, L>>,
    array: SystolicArray<R, C, L, P, WB, RL, CP>,
    accs: Vec<OutputAccumulator<P, ACC, AD>>,
    row: Vec<DFF<Bits<ACC>>>,
    h: Vec<DFF<Bits<H>>>,
    hscaler: HScaler<ACC, H, O>,
    lanes: Signal<Local, Bits<RL>>,
    unused_inputs: Signal<Local, Bit>,
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
    > OneBitAccelerator<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP>
{
    /// The const widths this type was instantiated with, in the order of
    /// `ArrayConfig`'s fields and methods.
    pub fn widths() -> [usize; 14] {
        [R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP]
    }

    /// The widths `cfg` calls for (see [`OneBitAccelerator::widths`]).
    pub fn widths_of(cfg: &ArrayConfig) -> [usize; 14] {
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
            cfg.rows * cfg.act_bits as usize,
            acc_address_bits(cfg),
            cfg.rows * cfg.lane_bits as usize,
            cfg.cols * cfg.psum_bits() as usize,
        ]
    }

    /// Build the accelerator for `cfg`, which must be the configuration the
    /// const widths were derived from (the `accelerator_for!` macro does that).
    pub fn new(cfg: &ArrayConfig) -> Result<Self, BuildError> {
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
        if cfg.acc_depth > 1 << 15 || cfg.beats_per_tile() > u16::MAX as usize || cfg.rows + cfg.cols > 1 << 15 {
            return Err(BuildError::Unsupported {
                what: "16-bit counters".into(),
                got: cfg.to_string(),
            });
        }
        Ok(Self {
            clock: Default::default(),
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
            ctl: Controller::new(&cfg),
            gscalers: (0..R).map(|_| GScaler::new(&cfg)).collect(),
            array: SystolicArray::new(),
            accs: (0..C).map(|_| OutputAccumulator::default()).collect(),
            row: (0..C).map(|_| DFF::default()).collect(),
            h: (0..C).map(|_| DFF::default()).collect(),
            hscaler: HScaler::new(&cfg),
            lanes: Default::default(),
            unused_inputs: Default::default(),
        })
    }
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
    > Logic for OneBitAccelerator<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP>
{
    fn update(&mut self) {
        let clock = self.clock.val();
        let ctl = &mut self.ctl;
        ctl.clock.next = clock;
        ctl.cmd_data.next = self.cmd_data.val();
        ctl.cmd_valid.next = self.cmd_valid.val();
        ctl.s_valid.next = self.s_valid.val();
        ctl.w_valid.next = self.w_valid.val();
        ctl.x_valid.next = self.x_valid.val();
        ctl.o_ready.next = self.o_ready.val();
        ctl.o_valid.next = self.hscaler.valid_out.val();
        ctl.out_busy.next = self.hscaler.busy.val();
        self.cmd_ready.next = ctl.cmd_ready.val();
        self.s_ready.next = ctl.s_ready.val();
        self.w_ready.next = ctl.w_ready.val();
        self.x_ready.next = ctl.x_ready.val();
        let g_swap = ctl.g_swap.val();
        let (g_shift, h_shift, pop, row_load) =
            (ctl.g_shift.val(), ctl.h_shift.val(), ctl.pop.val(), ctl.row_load.val());
        let scale = self.s_data.val();
        // West: g scalers (a shift chain for LOAD_G) and the lanes they feed.
        let x = self.x_data.val();
        let mut lanes = Bits::<RL>::default();
        for r in 0..R {
            self.gscalers[r].clock.next = clock;
            self.gscalers[r].x_in.next = x.get_bits::<A>(r * A);
            self.gscalers[r].g_shift.next = g_shift;
            self.gscalers[r].g_swap.next = g_swap;
            self.gscalers[r].g_in.next = if r + 1 < R {
                self.gscalers[r + 1].g_out.val()
            } else {
                scale.get_bits::<G>(0)
            };
            lanes.set_bits::<L>(r * L, self.gscalers[r].lane_out.val());
        }
        self.lanes.next = lanes;
        let array = &mut self.array;
        array.clock.next = clock;
        array.west_lanes.next = lanes;
        array.west_valid.next = self.ctl.token_valid.val();
        array.west_first.next = self.ctl.token_first.val();
        array.west_acc.next = self.ctl.token_acc.val();
        array.shadow_beat.next = self.w_data.val();
        array.shadow_shift.next = self.ctl.w_shift.val();
        // South: one accumulator per column, then the row buffer and h ring.
        let psums = array.south_psums.val();
        let (valid, first, acc) = (array.south_valid.val(), array.south_first.val(), array.south_acc.val());
        for c in 0..C {
            let a = &mut self.accs[c];
            a.clock.next = clock;
            a.psum_in.next = psums.get_bits::<P>(c * P);
            a.valid_in.next = valid.get_bit(c);
            a.first_in.next = first.get_bit(c);
            a.acc_in.next = acc.get_bit(c);
            a.drain.next = self.ctl.drain.val();
            a.drain_addr.next = self.ctl.drain_addr.val();
        }
        for c in 0..C {
            self.row[c].clock.next = clock;
            self.h[c].clock.next = clock;
            let next_row = if c + 1 < C {
                self.row[c + 1].q.val()
            } else {
                self.row[c].q.val()
            };
            self.row[c].d.next = if row_load {
                self.accs[c].acc_out.val()
            } else if pop {
                next_row
            } else {
                self.row[c].q.val()
            };
            let next_h = if c + 1 < C {
                self.h[c + 1].q.val()
            } else {
                self.h[0].q.val()
            };
            self.h[c].d.next = if h_shift {
                if c + 1 < C {
                    next_h
                } else {
                    scale.get_bits::<H>(0)
                }
            } else if pop {
                next_h
            } else {
                self.h[c].q.val()
            };
        }
        let hs = &mut self.hscaler;
        hs.clock.next = clock;
        hs.enable.next = self.ctl.advance.val();
        hs.valid_in.next = pop;
        hs.acc_in.next = self.row[0].q.val();
        hs.h_in.next = self.h[0].q.val();
        self.o_data.next = hs.word_out.val();
        self.o_valid.next = hs.valid_out.val();
        // Scale bits above g_bits/h_bits and row 0's g chain output are unused.
        self.unused_inputs.next = parity(scale) ^ parity(self.gscalers[0].g_out.val());
    }

    fn connect(&mut self) {
        let c = &mut self.ctl;
        for s in [
            &mut c.cmd_valid,
            &mut c.s_valid,
            &mut c.w_valid,
            &mut c.x_valid,
            &mut c.o_ready,
            &mut c.o_valid,
            &mut c.out_busy,
        ] {
            s.connect();
        }
        c.clock.connect();
        c.cmd_data.connect();
        self.cmd_ready.connect();
        self.s_ready.connect();
        self.w_ready.connect();
        self.x_ready.connect();
        for g in &mut self.gscalers {
            g.clock.connect();
            g.x_in.connect();
            g.g_shift.connect();
            g.g_swap.connect();
            g.g_in.connect();
        }
        self.lanes.connect();
        let a = &mut self.array;
        a.clock.connect();
        a.west_lanes.connect();
        a.west_valid.connect();
        a.west_first.connect();
        a.west_acc.connect();
        a.shadow_beat.connect();
        a.shadow_shift.connect();
        for a in &mut self.accs {
            a.clock.connect();
            a.psum_in.connect();
            a.valid_in.connect();
            a.first_in.connect();
            a.acc_in.connect();
            a.drain.connect();
            a.drain_addr.connect();
        }
        for d in &mut self.row {
            d.clock.connect();
            d.d.connect();
        }
        for d in &mut self.h {
            d.clock.connect();
            d.d.connect();
        }
        let h = &mut self.hscaler;
        h.clock.connect();
        h.enable.connect();
        h.valid_in.connect();
        h.acc_in.connect();
        h.h_in.connect();
        self.o_data.connect();
        self.o_valid.connect();
        self.unused_inputs.connect();
    }

    fn hdl(&self) -> Verilog {
        let mut n = Netlist::default();
        for (port, src) in [
            ("ctl$clock", "clock"),
            ("ctl$cmd_data", "cmd_data"),
            ("ctl$cmd_valid", "cmd_valid"),
            ("ctl$s_valid", "s_valid"),
            ("ctl$w_valid", "w_valid"),
            ("ctl$x_valid", "x_valid"),
            ("ctl$o_ready", "o_ready"),
            ("ctl$o_valid", "hscaler$valid_out"),
            ("ctl$out_busy", "hscaler$busy"),
            ("cmd_ready", "ctl$cmd_ready"),
            ("s_ready", "ctl$s_ready"),
            ("w_ready", "ctl$w_ready"),
            ("x_ready", "ctl$x_ready"),
        ] {
            n.wire(port, src);
        }
        for r in 0..R {
            n.wire(&format!("gscalers${r}$clock"), "clock");
            n.from_slice(&format!("gscalers${r}$x_in"), "x_data", r * A, A);
            n.wire(&format!("gscalers${r}$g_shift"), "ctl$g_shift");
            n.wire(&format!("gscalers${r}$g_swap"), "ctl$g_swap");
            if r + 1 < R {
                n.wire(&format!("gscalers${r}$g_in"), &format!("gscalers${}$g_out", r + 1));
            } else {
                n.from_slice(&format!("gscalers${r}$g_in"), "s_data", 0, G);
            }
            n.into_slice("lanes", r * L, L, &format!("gscalers${r}$lane_out"));
        }
        for (port, src) in [
            ("array$clock", "clock"),
            ("array$west_lanes", "lanes"),
            ("array$west_valid", "ctl$token_valid"),
            ("array$west_first", "ctl$token_first"),
            ("array$west_acc", "ctl$token_acc"),
            ("array$shadow_beat", "w_data"),
            ("array$shadow_shift", "ctl$w_shift"),
        ] {
            n.wire(port, src);
        }
        for c in 0..C {
            n.wire(&format!("accs${c}$clock"), "clock");
            n.from_slice(&format!("accs${c}$psum_in"), "array$south_psums", c * P, P);
            n.from_slice(&format!("accs${c}$valid_in"), "array$south_valid", c, 1);
            n.from_slice(&format!("accs${c}$first_in"), "array$south_first", c, 1);
            n.from_slice(&format!("accs${c}$acc_in"), "array$south_acc", c, 1);
            n.wire(&format!("accs${c}$drain"), "ctl$drain");
            n.wire(&format!("accs${c}$drain_addr"), "ctl$drain_addr");
        }
        // Row buffer and h ring: defaults first, then the overriding cases,
        // as the sequential `if`s of update() read.
        for c in 0..C {
            n.wire(&format!("row${c}$clock"), "clock");
            n.wire(&format!("h${c}$clock"), "clock");
            let next_row = if c + 1 < C {
                format!("row${}$q", c + 1)
            } else {
                format!("row${c}$q")
            };
            let next_h = if c + 1 < C {
                format!("h${}$q", c + 1)
            } else {
                "h$0$q".to_string()
            };
            n.wire(&format!("row${c}$d"), &format!("row${c}$q"));
            n.when("ctl$pop", |n| n.wire(&format!("row${c}$d"), &next_row));
            n.when("ctl$row_load", |n| {
                n.wire(&format!("row${c}$d"), &format!("accs${c}$acc_out"))
            });
            n.wire(&format!("h${c}$d"), &format!("h${c}$q"));
            n.when("ctl$pop", |n| n.wire(&format!("h${c}$d"), &next_h));
            if c + 1 < C {
                n.when("ctl$h_shift", |n| n.wire(&format!("h${c}$d"), &next_h));
            } else {
                n.when("ctl$h_shift", |n| n.from_slice(&format!("h${c}$d"), "s_data", 0, H));
            }
        }
        for (port, src) in [
            ("hscaler$clock", "clock"),
            ("hscaler$enable", "ctl$advance"),
            ("hscaler$valid_in", "ctl$pop"),
            ("hscaler$acc_in", "row$0$q"),
            ("hscaler$h_in", "h$0$q"),
            ("o_data", "hscaler$word_out"),
            ("o_valid", "hscaler$valid_out"),
        ] {
            n.wire(port, src);
        }
        n.sink("unused_inputs", &["s_data".to_string(), "gscalers$0$g_out".to_string()]);
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
            pub const X: usize = R * A;
            pub const AD: usize = $crate::top::acc_address_bits(&CONFIG);
            pub const RL: usize = R * L;
            pub const CP: usize = C * P;
            pub type Accelerator = $crate::OneBitAccelerator<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP>;
            /// The accelerator for this configuration, connected and ready to simulate.
            pub fn build() -> Result<Accelerator, $crate::top::BuildError> {
                use $crate::rust_hdl::prelude::Block;
                let mut a = Accelerator::new(&CONFIG)?;
                a.connect_all();
                Ok(a)
            }
        }
    };
}
