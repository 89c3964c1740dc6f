//! An 8N1 UART for the board tops: [`UartRx`] (pin → byte stream) and
//! [`UartTx`] (byte stream → pin). One start bit (0), eight data bits LSB
//! first, one stop bit (1); the line idles high. The bit time is `divisor`
//! clock cycles, a constructor argument computed from the board clock and the
//! baud rate ([`baud_divisor`]).
//!
//! A UART has no back-pressure towards the sender, so the receiver holds one
//! finished byte on a valid/ready stream while the next one is shifting in;
//! a byte that finishes while the previous one was not yet taken is dropped
//! (the waiting byte stays) and sets the sticky `overrun` flag (the host's framing rules in
//! docs/bitstream.md keep that from happening). A stop bit that reads 0 drops
//! the byte and sets the sticky `frame_error` flag.
//!
//! `UartRx` ports:
//! | port          | dir | width | meaning |
//! |---------------|-----|-------|---------|
//! | `clock`       | in  | 1     | the one clock |
//! | `rx`          | in  | 1     | the serial line (asynchronous; synchronised by two flip-flops) |
//! | `data`, `valid`, `ready` | out, out, in | 8, 1, 1 | received bytes |
//! | `overrun`     | out | 1     | sticky: a byte was lost because the previous one was not taken |
//! | `frame_error` | out | 1     | sticky: a stop bit read 0 |
//! | `clear`       | in  | 1     | clear both sticky flags and drop the byte waiting (the board's break reset) |
//!
//! `UartTx` ports:
//! | port          | dir | width | meaning |
//! |---------------|-----|-------|---------|
//! | `clock`       | in  | 1     | the one clock |
//! | `data`, `valid`, `ready` | in, in, out | 8, 1, 1 | bytes to send (`ready` depends only on state) |
//! | `tx`          | out | 1     | the serial line (idles high) |

use crate::util::twos;
use rust_hdl::prelude::*;

/// Clock cycles per bit for `baud` at `clock_hz`, rounded to nearest; errors
/// when the divisor is below 4 (the receiver samples mid-bit) or does not fit
/// the 16-bit bit timer, or when rounding moves the rate by more than 2 %.
pub fn baud_divisor(clock_hz: u64, baud: u64) -> Result<u16, String> {
    if baud == 0 {
        return Err("baud rate 0".into());
    }
    let div = (clock_hz + baud / 2) / baud;
    if !(4..=u16::MAX as u64).contains(&div) {
        return Err(format!(
            "{clock_hz} Hz / {baud} baud = {div} cycles per bit; the UART needs 4..=65535"
        ));
    }
    let actual = clock_hz as f64 / div as f64;
    let error = (actual - baud as f64).abs() / baud as f64;
    if error > 0.02 {
        return Err(format!(
            "{clock_hz} Hz / {div} = {actual:.0} baud is {:.1} % off {baud}",
            error * 100.0
        ));
    }
    Ok(div as u16)
}

#[derive(Clone, Debug, LogicBlock)]
pub struct UartRx {
    pub clock: Signal<In, Clock>,
    pub clear: Signal<In, Bit>,
    pub rx: Signal<In, Bit>,
    pub data: Signal<Out, Bits<8>>,
    pub valid: Signal<Out, Bit>,
    pub ready: Signal<In, Bit>,
    pub overrun: Signal<Out, Bit>,
    pub frame_error: Signal<Out, Bit>,
    sync1: DFF<Bit>,
    sync2: DFF<Bit>,
    busy: DFF<Bit>,
    timer: DFF<Bits<16>>,
    phase: DFF<Bits<4>>,
    shift: DFF<Bits<8>>,
    hold: DFF<Bits<8>>,
    hold_valid: DFF<Bit>,
    overrun_flag: DFF<Bit>,
    frame_flag: DFF<Bit>,
    // Constants: the bit time minus one, half of it, phase numbers.
    bit_time: Constant<Bits<16>>,
    half_time: Constant<Bits<16>>,
    zero16: Constant<Bits<16>>,
    one16: Constant<Bits<16>>,
    phase_start: Constant<Bits<4>>,
    phase_stop: Constant<Bits<4>>,
    phase_one: Constant<Bits<4>>,
    msb: Constant<Bits<8>>,
}

impl UartRx {
    /// A receiver with `divisor` clock cycles per bit (at least 4).
    pub fn new(divisor: u16) -> Self {
        assert!(divisor >= 4, "UART divisor {divisor} < 4");
        Self {
            clock: Default::default(),
            clear: Default::default(),
            rx: Default::default(),
            data: Default::default(),
            valid: Default::default(),
            ready: Default::default(),
            overrun: Default::default(),
            frame_error: Default::default(),
            sync1: Default::default(),
            sync2: Default::default(),
            busy: Default::default(),
            timer: Default::default(),
            phase: Default::default(),
            shift: Default::default(),
            hold: Default::default(),
            hold_valid: Default::default(),
            overrun_flag: Default::default(),
            frame_flag: Default::default(),
            bit_time: Constant::new(twos::<16>(divisor as i64 - 1)),
            half_time: Constant::new(twos::<16>(divisor as i64 / 2 - 1)),
            zero16: Constant::new(twos::<16>(0)),
            one16: Constant::new(twos::<16>(1)),
            phase_start: Constant::new(twos::<4>(0)),
            phase_stop: Constant::new(twos::<4>(9)),
            phase_one: Constant::new(twos::<4>(1)),
            msb: Constant::new(twos::<8>(0x80)),
        }
    }
}

impl Logic for UartRx {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            sync1,
            sync2,
            busy,
            timer,
            phase,
            shift,
            hold,
            hold_valid,
            overrun_flag,
            frame_flag
        );
        // The line idles high; the synchronisers power up to 0, which the
        // start check below (at mid-bit, the line must still be low) rejects
        // once the line is seen high.
        self.sync1.d.next = self.rx.val();
        self.sync2.d.next = self.sync1.q.val();
        self.data.next = self.hold.q.val();
        self.valid.next = self.hold_valid.q.val();
        self.overrun.next = self.overrun_flag.q.val();
        self.frame_error.next = self.frame_flag.q.val();
        if self.hold_valid.q.val() & self.ready.val() {
            self.hold_valid.d.next = false;
        }
        if !self.busy.q.val() {
            if !self.sync2.q.val() {
                // A falling edge: sample the start bit half a bit later.
                self.busy.d.next = true;
                self.timer.d.next = self.half_time.val();
                self.phase.d.next = self.phase_start.val();
            }
        } else if self.timer.q.val() != self.zero16.val() {
            self.timer.d.next = self.timer.q.val() - self.one16.val();
        } else {
            self.timer.d.next = self.bit_time.val();
            self.phase.d.next = self.phase.q.val() + self.phase_one.val();
            if self.phase.q.val() == self.phase_start.val() {
                if self.sync2.q.val() {
                    // The line went back high: a glitch, not a start bit.
                    self.busy.d.next = false;
                }
            } else if self.phase.q.val() == self.phase_stop.val() {
                self.busy.d.next = false;
                if self.sync2.q.val() {
                    if self.hold_valid.q.val() & !self.ready.val() {
                        // The waiting byte stays; this one is lost.
                        self.overrun_flag.d.next = true;
                    } else {
                        self.hold.d.next = self.shift.q.val();
                        self.hold_valid.d.next = true;
                    }
                } else {
                    self.frame_flag.d.next = true;
                }
            } else {
                // Data bits arrive LSB first: shift right, new bit at the top.
                self.shift.d.next = self.shift.q.val() >> 1;
                if self.sync2.q.val() {
                    self.shift.d.next = (self.shift.q.val() >> 1) | self.msb.val();
                }
            }
        }
        if self.clear.val() {
            self.overrun_flag.d.next = false;
            self.frame_flag.d.next = false;
            self.hold_valid.d.next = false;
        }
    }
}

#[derive(Clone, Debug, LogicBlock)]
pub struct UartTx {
    pub clock: Signal<In, Clock>,
    pub data: Signal<In, Bits<8>>,
    pub valid: Signal<In, Bit>,
    pub ready: Signal<Out, Bit>,
    pub tx: Signal<Out, Bit>,
    busy: DFF<Bit>,
    timer: DFF<Bits<16>>,
    left: DFF<Bits<4>>,
    // Start bit, eight data bits, stop bit: bit 0 is on the line.
    frame: DFF<Bits<10>>,
    data_wide: Signal<Local, Bits<10>>,
    bit_time: Constant<Bits<16>>,
    zero16: Constant<Bits<16>>,
    one16: Constant<Bits<16>>,
    zero4: Constant<Bits<4>>,
    one4: Constant<Bits<4>>,
    bits_after_start: Constant<Bits<4>>,
    stop_and_idle: Constant<Bits<10>>,
    data_shift: Constant<Bits<10>>,
}

impl UartTx {
    /// A transmitter with `divisor` clock cycles per bit.
    pub fn new(divisor: u16) -> Self {
        assert!(divisor >= 4, "UART divisor {divisor} < 4");
        Self {
            clock: Default::default(),
            data: Default::default(),
            valid: Default::default(),
            ready: Default::default(),
            tx: Default::default(),
            busy: Default::default(),
            timer: Default::default(),
            left: Default::default(),
            frame: Default::default(),
            data_wide: Default::default(),
            bit_time: Constant::new(twos::<16>(divisor as i64 - 1)),
            zero16: Constant::new(twos::<16>(0)),
            one16: Constant::new(twos::<16>(1)),
            zero4: Constant::new(twos::<4>(0)),
            one4: Constant::new(twos::<4>(1)),
            bits_after_start: Constant::new(twos::<4>(9)),
            stop_and_idle: Constant::new(twos::<10>(0x200)),
            data_shift: Constant::new(twos::<10>(1)),
        }
    }
}

impl Logic for UartTx {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, busy, timer, left, frame);
        self.ready.next = !self.busy.q.val();
        self.tx.next = true;
        // Widened on its own line: the Verilog tidy-up rewrites casts that
        // start an expression.
        self.data_wide.next = bit_cast::<10, 8>(self.data.val());
        if self.busy.q.val() {
            self.tx.next = self.frame.q.val().get_bit(0);
            if self.timer.q.val() != self.zero16.val() {
                self.timer.d.next = self.timer.q.val() - self.one16.val();
            } else {
                self.timer.d.next = self.bit_time.val();
                self.frame.d.next = self.frame.q.val() >> 1;
                self.left.d.next = self.left.q.val() - self.one4.val();
                if self.left.q.val() == self.zero4.val() {
                    self.busy.d.next = false;
                }
            }
        } else if self.valid.val() {
            self.busy.d.next = true;
            self.timer.d.next = self.bit_time.val();
            self.left.d.next = self.bits_after_start.val();
            self.frame.d.next =
                (self.data_wide.val() << self.data_shift.val()) | self.stop_and_idle.val();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::baud_divisor;

    #[test]
    fn divisors_of_the_boards_and_bad_rates() {
        assert_eq!(baud_divisor(12_000_000, 115_200), Ok(104));
        assert_eq!(baud_divisor(25_000_000, 115_200), Ok(217));
        // The flow's defaults (bitstream.rs): exact, 8 and 25 cycles per bit.
        assert_eq!(baud_divisor(12_000_000, 1_500_000), Ok(8));
        assert_eq!(baud_divisor(25_000_000, 1_000_000), Ok(25));
        assert_eq!(baud_divisor(12_000_000, 3_000_000), Ok(4));
        assert!(
            baud_divisor(12_000_000, 4_000_000).is_err(),
            "3 cycles per bit"
        );
        assert!(
            baud_divisor(100, 22).is_err(),
            "5 cycles per bit is 9 % off"
        );
        assert!(baud_divisor(12_000_000, 0).is_err());
    }
}
