//! Board tops: the accelerator behind a narrow host link.
//!
//! - [`BridgedAccelerator`]: [`ByteStreamBridge`] + [`OneBitAccelerator`],
//!   one byte stream each way (what the tests drive, through the driver's
//!   `bytelink` framing).
//! - [`OneBitBoard`]: a UART ([`UartRx`], [`UartTx`], 8N1) in front of a
//!   `BridgedAccelerator`, plus two LEDs: the Verilog module `top` that the
//!   bitstream flow places on a board (pins in hdl/boards/).
//!
//! `BridgedAccelerator` ports: `clock`; `rx_data` 8 / `rx_valid` / `rx_ready`
//! (bytes in); `tx_data` 8 / `tx_valid` / `tx_ready` (bytes out);
//! `bad_header` (sticky). `OneBitBoard` ports: `clock` (the board oscillator),
//! `uart_rx` (from the host), `uart_tx` (to the host), `led_error` (sticky:
//! UART overrun or framing error, or a bad header), `led_alive` (blinks: the
//! clock runs; 2^23 cycles per half period). LED polarity is a constructor
//! argument (the iCEBreaker's LEDs are active low, the ULX3S's active high).
//! A UART break (`uart_rx` low for two character times, [`break_cycles`])
//! resets the bridge and the accelerator until two character times after
//! the line rises again (the receiver's bytes from the break are dropped);
//! `BridgedAccelerator` has a `reset` port instead.
//!
//! `board_for!(name, CONFIG)` derives every const width from one
//! `ArrayConfig`, like `accelerator_for!`.

use crate::bridge::ByteStreamBridge;
use crate::top::{BuildError, OneBitAccelerator};
use crate::uart::{UartRx, UartTx};
use crate::util::twos;
use onebit_core::ArrayConfig;
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct BridgedAccelerator<
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
    const SR: usize,
    const BB: usize,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub rx_data: Signal<In, Bits<8>>,
    pub rx_valid: Signal<In, Bit>,
    pub rx_ready: Signal<Out, Bit>,
    pub tx_data: Signal<Out, Bits<8>>,
    pub tx_valid: Signal<Out, Bit>,
    pub tx_ready: Signal<In, Bit>,
    pub bad_header: Signal<Out, Bit>,
    bridge: ByteStreamBridge<WB, X, S, OB, SR, BB>,
    accel: OneBitAccelerator<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB>,
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
        const SR: usize,
        const BB: usize,
    > BridgedAccelerator<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB, SR, BB>
{
    pub fn new(cfg: &ArrayConfig) -> Result<Self, BuildError> {
        let accel = OneBitAccelerator::new(cfg)?;
        Ok(Self {
            clock: Default::default(),
            reset: Default::default(),
            rx_data: Default::default(),
            rx_valid: Default::default(),
            rx_ready: Default::default(),
            tx_data: Default::default(),
            tx_valid: Default::default(),
            tx_ready: Default::default(),
            bad_header: Default::default(),
            bridge: ByteStreamBridge::new(cfg),
            accel,
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
        const SR: usize,
        const BB: usize,
    > Logic for BridgedAccelerator<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB, SR, BB>
{
    #[hdl_gen]
    fn update(&mut self) {
        self.bridge.clock.next = self.clock.val();
        self.accel.clock.next = self.clock.val();
        self.bridge.reset.next = self.reset.val();
        self.accel.reset.next = self.reset.val();
        self.bridge.rx_data.next = self.rx_data.val();
        self.bridge.rx_valid.next = self.rx_valid.val();
        self.rx_ready.next = self.bridge.rx_ready.val();
        self.tx_data.next = self.bridge.tx_data.val();
        self.tx_valid.next = self.bridge.tx_valid.val();
        self.bridge.tx_ready.next = self.tx_ready.val();
        self.bad_header.next = self.bridge.bad_header.val();
        self.accel.cmd_data.next = self.bridge.cmd_data.val();
        self.accel.cmd_valid.next = self.bridge.cmd_valid.val();
        self.bridge.cmd_ready.next = self.accel.cmd_ready.val();
        self.accel.w_data.next = self.bridge.w_data.val();
        self.accel.w_valid.next = self.bridge.w_valid.val();
        self.bridge.w_ready.next = self.accel.w_ready.val();
        self.accel.s_data.next = self.bridge.s_data.val();
        self.accel.s_valid.next = self.bridge.s_valid.val();
        self.bridge.s_ready.next = self.accel.s_ready.val();
        self.accel.x_data.next = self.bridge.x_data.val();
        self.accel.x_valid.next = self.bridge.x_valid.val();
        self.bridge.x_ready.next = self.accel.x_ready.val();
        self.bridge.o_data.next = self.accel.o_data.val();
        self.bridge.o_valid.next = self.accel.o_valid.val();
        self.accel.o_ready.next = self.bridge.o_ready.val();
    }
}

#[derive(LogicBlock)]
pub struct OneBitBoard<
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
    const SR: usize,
    const BB: usize,
> {
    pub clock: Signal<In, Clock>,
    pub uart_rx: Signal<In, Bit>,
    pub uart_tx: Signal<Out, Bit>,
    pub led_error: Signal<Out, Bit>,
    pub led_alive: Signal<Out, Bit>,
    receiver: UartRx,
    transmitter: UartTx,
    core: BridgedAccelerator<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB, SR, BB>,
    blink: DFF<Bits<24>>,
    rx_low: DFF<Bits<24>>,
    holdoff: DFF<Bits<24>>,
    /// The UART line through two flip-flops (it is asynchronous to the
    /// clock), for the break detector.
    rx_s1: DFF<Bit>,
    rx_s2: DFF<Bit>,
    /// The core's reset, registered twice (beside the break detector, then
    /// near its loads): it fans out over the whole design.
    reset_pre: DFF<Bit>,
    core_reset: DFF<Bit>,
    error: Signal<Local, Bit>,
    led_off: Constant<Bit>,
    one24: Constant<Bits<24>>,
    zero24: Constant<Bits<24>>,
    break_cycles: Constant<Bits<24>>,
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
        const SR: usize,
        const BB: usize,
    > OneBitBoard<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB, SR, BB>
{
    /// The board top for `cfg` on a board clocked at `clock_hz`, with a UART
    /// at `baud` (8N1; the bit time is rounded to whole cycles, see
    /// [`crate::uart::baud_divisor`]); `leds_active_low` for boards whose LEDs
    /// light on 0.
    pub fn new(
        cfg: &ArrayConfig,
        clock_hz: u64,
        baud: u64,
        leds_active_low: bool,
    ) -> Result<Self, BuildError> {
        let divisor =
            crate::uart::baud_divisor(clock_hz, baud).map_err(|e| BuildError::Unsupported {
                what: "a UART bit time of 4..=65535 cycles within 2 % of the baud rate".into(),
                got: e,
            })?;
        Ok(Self {
            clock: Default::default(),
            uart_rx: Default::default(),
            uart_tx: Default::default(),
            led_error: Default::default(),
            led_alive: Default::default(),
            receiver: UartRx::new(divisor),
            transmitter: UartTx::new(divisor),
            core: BridgedAccelerator::new(cfg)?,
            blink: Default::default(),
            rx_low: Default::default(),
            holdoff: Default::default(),
            rx_s1: Default::default(),
            rx_s2: Default::default(),
            reset_pre: Default::default(),
            core_reset: Default::default(),
            error: Default::default(),
            led_off: Constant::new(leds_active_low),
            one24: Constant::new(twos::<24>(1)),
            zero24: Constant::new(twos::<24>(0)),
            break_cycles: Constant::new(twos::<24>(break_cycles(divisor) as i64)),
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
        const SR: usize,
        const BB: usize,
    > Logic for OneBitBoard<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB, SR, BB>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, blink, rx_low, holdoff, rx_s1, rx_s2, reset_pre, core_reset);
        // A UART break (the line held low for two character times) resets
        // the bridge and the accelerator, so a host can recover a board
        // whose streams it left half-sent.
        self.rx_s1.d.next = self.uart_rx.val();
        self.rx_s2.d.next = self.rx_s1.q.val();
        self.rx_low.d.next = self.zero24.val();
        if !self.rx_s2.q.val() & (self.rx_low.q.val() != self.break_cycles.val()) {
            self.rx_low.d.next = self.rx_low.q.val() + self.one24.val();
        }
        if !self.rx_s2.q.val() & (self.rx_low.q.val() == self.break_cycles.val()) {
            self.rx_low.d.next = self.break_cycles.val();
        }
        // The reset lasts another two characters after the line rises, so
        // the receiver's last half-frame of the break is dropped too.
        if self.holdoff.q.val() != self.zero24.val() {
            self.holdoff.d.next = self.holdoff.q.val() - self.one24.val();
        }
        if self.rx_low.q.val() == self.break_cycles.val() {
            self.holdoff.d.next = self.break_cycles.val();
        }
        self.reset_pre.d.next = (self.rx_low.q.val() == self.break_cycles.val()) | (self.holdoff.q.val() != self.zero24.val());
        self.core_reset.d.next = self.reset_pre.q.val();
        self.core.reset.next = self.core_reset.q.val();
        self.receiver.clear.next = self.core_reset.q.val();
        self.receiver.clock.next = self.clock.val();
        self.transmitter.clock.next = self.clock.val();
        self.core.clock.next = self.clock.val();
        self.receiver.rx.next = self.uart_rx.val();
        self.core.rx_data.next = self.receiver.data.val();
        self.core.rx_valid.next = self.receiver.valid.val();
        self.receiver.ready.next = self.core.rx_ready.val();
        self.transmitter.data.next = self.core.tx_data.val();
        self.transmitter.valid.next = self.core.tx_valid.val();
        self.core.tx_ready.next = self.transmitter.ready.val();
        self.uart_tx.next = self.transmitter.tx.val();
        self.blink.d.next = self.blink.q.val() + self.one24.val();
        self.error.next = self.receiver.overrun.val()
            | self.receiver.frame_error.val()
            | self.core.bad_header.val();
        self.led_error.next = self.error.val() ^ self.led_off.val();
        self.led_alive.next = self.blink.q.val().get_bit(23) ^ self.led_off.val();
    }
}

/// Cycles the UART line must stay low to count as a break: two 10-bit
/// characters.
pub const fn break_cycles(divisor: u16) -> u32 {
    20 * divisor as u32
}

/// Define a module with the const widths of one `ArrayConfig` (the
/// accelerator's, from `accelerator_for!`, plus the bridge's `SR` and `OB`),
/// the types `Bridged` and `Board`, and their constructors:
/// `onebit_hdl::board_for!(ice40_up5k, onebit_core::ArrayConfig::ICE40_UP5K);`
#[macro_export]
macro_rules! board_for {
    ($name:ident, $cfg:expr) => {
        pub mod $name {
            $crate::accelerator_for!(accel, $cfg);
            pub use accel::*;
            pub const SR: usize = $crate::bridge::shift_register_bits(&CONFIG);
            pub const BB: usize = $crate::bridge::output_buffer_bits(&CONFIG);
            pub type Bridged = $crate::board::BridgedAccelerator<
                R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB, SR, BB,
            >;
            pub type Board =
                $crate::board::OneBitBoard<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB, SR, BB>;
            /// Bridge + accelerator, connected and ready to simulate.
            pub fn build_bridged() -> Result<Bridged, $crate::top::BuildError> {
                use $crate::rust_hdl::prelude::Block;
                let mut b = Bridged::new(&CONFIG)?;
                b.connect_all();
                Ok(b)
            }
            /// The board top for a `clock_hz` board clock and a UART at `baud`.
            pub fn build_board(
                clock_hz: u64,
                baud: u64,
                leds_active_low: bool,
            ) -> Result<Board, $crate::top::BuildError> {
                use $crate::rust_hdl::prelude::Block;
                let mut b = Board::new(&CONFIG, clock_hz, baud, leds_active_low)?;
                b.connect_all();
                Ok(b)
            }
        }
    };
}

/// The boards the bitstream flow builds.
pub mod presets {
    crate::board_for!(ice40_up5k, ArrayConfig::ICE40_UP5K);
    // The 8×8 preset, to show (onebit-bitstream --ice40-preset ice40) that
    // it does not fit the UP5K.
    crate::board_for!(ice40, ArrayConfig::ICE40);
    crate::board_for!(ecp5, ArrayConfig::ECP5);
}

use crate::device::settle;

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
        const SR: usize,
        const BB: usize,
    > onebit_core::ports::BytePorts
    for BridgedAccelerator<R, C, A, G, L, P, ACC, H, O, WB, X, AD, RL, CP, CA, NB, B, OW, NOB, S, OB, SR, BB>
{
    fn set_reset(&mut self, reset: bool) {
        self.reset.next = reset;
    }
    fn set_rx(&mut self, valid: bool, byte: u8) {
        self.rx_valid.next = valid;
        self.rx_data.next = (byte as u64).into();
    }
    fn set_tx_ready(&mut self, ready: bool) {
        self.tx_ready.next = ready;
    }
    fn eval(&mut self) {
        settle(self);
    }
    fn rx_ready(&self) -> bool {
        self.rx_ready.val()
    }
    fn tx_valid(&self) -> bool {
        self.tx_valid.val()
    }
    fn tx_data(&self) -> u8 {
        self.tx_data.val().to_u64() as u8
    }
    fn tick(&mut self) {
        self.clock.next = Clock { clk: true };
        settle(self);
        self.clock.next = Clock { clk: false };
        settle(self);
    }
}
