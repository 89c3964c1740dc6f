//! `ByteStreamBridge`: the accelerator's five wide streams over one byte
//! stream in each direction, so a board can reach it through a UART.
//!
//! Host → device framing (the driver's `onebit_driver::bytelink` writes it):
//! one header byte naming the stream, then that stream's word as
//! little-endian bytes (`ceil(width / 8)` of them, unused top bits 0):
//! | header | stream | bytes |
//! |--------|--------|-------|
//! | 0x01   | cmd    | 4 |
//! | 0x02   | w      | ceil(weight_beat_bits / 8) |
//! | 0x03   | s      | ceil(scale_beat_bits / 8) |
//! | 0x04   | x      | ceil(rows·act_bits / 8) |
//! Any other header byte is dropped and sets the sticky `bad_header` flag.
//! Device → host: every output beat as `ceil(out_beat_bits / 8)`
//! little-endian bytes (out_words_per_beat words of out_bits), no header.
//!
//! A finished word is presented on its stream (valid high) until the
//! accelerator takes it; meanwhile `rx_ready` is low. All readies and valids
//! depend only on state, never combinationally on the other side's valid or
//! ready, so the bridge keeps the accelerator's valid/ready rules.
//!
//! Bytes enter a shift register of SR = 8·ceil(max(32, X, WB, S) / 8) bits from
//! the top, so after a stream's n bytes its word sits at bit SR − 8n: every
//! stream's data port is a constant slice of the register.
//!
//! Ports (one clock):
//! | port | dir | width | meaning |
//! |------|-----|-------|---------|
//! | `rx_data`, `rx_valid`, `rx_ready` | in, in, out | 8, 1, 1 | bytes from the host |
//! | `tx_data`, `tx_valid`, `tx_ready` | out, out, in | 8, 1, 1 | bytes to the host |
//! | `reset` | in | 1 | drop the word being assembled or sent |
//! | `cmd_*`, `w_*`, `s_*`, `x_*` | out (data, valid), in (ready) | 32, WB, S, X | to the accelerator's input streams |
//! | `o_data`, `o_valid`, `o_ready` | in, in, out | O, 1, 1 | from the accelerator's output stream (O = out_beat_bits) |
//! | `bad_header` | out | 1 | sticky: a header byte named no stream |
//!
//! Const generics: `WB` weight beat bits, `X` = rows·act_bits, `S`
//! scale_beat_bits, `O` out_beat_bits, `SR` (above), `OB` = 8·ceil(O / 8);
//! [`ByteStreamBridge::new`] checks them against the `ArrayConfig`.

use crate::util::twos;
use onebit_core::ArrayConfig;
use rust_hdl::prelude::*;

// The framing is the wire protocol's (one definition in onebit-core).
pub use onebit_core::wire::framing::{bytes_for, HEADER_ACTIVATION, HEADER_CMD, HEADER_SCALE, HEADER_WEIGHT};

/// SR for a configuration: the shift register holds the widest input word.
pub const fn shift_register_bits(cfg: &ArrayConfig) -> usize {
    let x = cfg.activation_beat_bits();
    let wb = cfg.weight_beat_bits as usize;
    let s = cfg.scale_beat_bits();
    let mut m = 32;
    if x > m {
        m = x;
    }
    if wb > m {
        m = wb;
    }
    if s > m {
        m = s;
    }
    8 * bytes_for(m)
}

/// OB for a configuration: the output beat rounded up to whole bytes.
pub const fn output_buffer_bits(cfg: &ArrayConfig) -> usize {
    8 * bytes_for(cfg.out_beat_bits())
}

#[derive(Clone, Debug, LogicBlock)]
pub struct ByteStreamBridge<
    const WB: usize,
    const X: usize,
    const S: usize,
    const O: usize,
    const SR: usize,
    const OB: usize,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub rx_data: Signal<In, Bits<8>>,
    pub rx_valid: Signal<In, Bit>,
    pub rx_ready: Signal<Out, Bit>,
    pub tx_data: Signal<Out, Bits<8>>,
    pub tx_valid: Signal<Out, Bit>,
    pub tx_ready: Signal<In, Bit>,
    pub cmd_data: Signal<Out, Bits<32>>,
    pub cmd_valid: Signal<Out, Bit>,
    pub cmd_ready: Signal<In, Bit>,
    pub w_data: Signal<Out, Bits<WB>>,
    pub w_valid: Signal<Out, Bit>,
    pub w_ready: Signal<In, Bit>,
    pub s_data: Signal<Out, Bits<S>>,
    pub s_valid: Signal<Out, Bit>,
    pub s_ready: Signal<In, Bit>,
    pub x_data: Signal<Out, Bits<X>>,
    pub x_valid: Signal<Out, Bit>,
    pub x_ready: Signal<In, Bit>,
    pub o_data: Signal<In, Bits<O>>,
    pub o_valid: Signal<In, Bit>,
    pub o_ready: Signal<Out, Bit>,
    pub bad_header: Signal<Out, Bit>,
    // Input side: which stream the bytes belong to (0 = expecting a header),
    // bytes still to come, the word being assembled, a finished word waiting.
    stream: DFF<Bits<3>>,
    left: DFF<Bits<8>>,
    word: DFF<Bits<SR>>,
    full: DFF<Bit>,
    bad: DFF<Bit>,
    taken: Signal<Local, Bit>,
    /// `full` for each stream, as flip-flops: the streams' valids.
    v_cmd: DFF<Bit>,
    v_w: DFF<Bit>,
    v_s: DFF<Bit>,
    v_x: DFF<Bit>,
    byte_at_top: Signal<Local, Bits<SR>>,
    // Output side: the word being sent and its bytes still to send.
    out_word: DFF<Bits<OB>>,
    out_left: DFF<Bits<8>>,
    /// A word is being sent (out_left ≠ 0), as a flip-flop: `o_ready` and
    /// `tx_valid` come straight from it.
    out_busy: DFF<Bit>,
    // Constants: stream numbers (= header bytes), byte counts, slice offsets.
    id_none: Constant<Bits<3>>,
    id_cmd: Constant<Bits<3>>,
    id_w: Constant<Bits<3>>,
    id_s: Constant<Bits<3>>,
    id_x: Constant<Bits<3>>,
    header_cmd: Constant<Bits<8>>,
    header_w: Constant<Bits<8>>,
    header_s: Constant<Bits<8>>,
    header_x: Constant<Bits<8>>,
    n_cmd: Constant<Bits<8>>,
    n_w: Constant<Bits<8>>,
    n_s: Constant<Bits<8>>,
    n_x: Constant<Bits<8>>,
    n_o: Constant<Bits<8>>,
    zero8: Constant<Bits<8>>,
    one8: Constant<Bits<8>>,
    top_shift: Constant<Bits<16>>,
    off_cmd: Constant<Bits<16>>,
    off_w: Constant<Bits<16>>,
    off_s: Constant<Bits<16>>,
    off_x: Constant<Bits<16>>,
}

impl<const WB: usize, const X: usize, const S: usize, const O: usize, const SR: usize, const OB: usize>
    ByteStreamBridge<WB, X, S, O, SR, OB>
{
    /// The bridge for `cfg`; panics if the const widths are not `cfg`'s
    /// (the `board_for!` macro derives them from it).
    pub fn new(cfg: &ArrayConfig) -> Self {
        assert_eq!(
            (WB, X, S, O, SR, OB),
            (
                cfg.weight_beat_bits as usize,
                cfg.activation_beat_bits(),
                cfg.scale_beat_bits(),
                cfg.out_beat_bits(),
                shift_register_bits(cfg),
                output_buffer_bits(cfg)
            ),
            "bridge widths do not match {cfg}"
        );
        assert!(SR / 8 < 256 && OB / 8 < 256, "a word must fit 255 bytes");
        let b8 = |v: usize| Constant::new(twos::<8>(v as i64));
        let b3 = |v: u8| Constant::new(twos::<3>(v as i64));
        let off = |bits: usize| Constant::new(twos::<16>((SR - 8 * bytes_for(bits)) as i64));
        Self {
            clock: Default::default(),
            reset: Default::default(),
            rx_data: Default::default(),
            rx_valid: Default::default(),
            rx_ready: Default::default(),
            tx_data: Default::default(),
            tx_valid: Default::default(),
            tx_ready: Default::default(),
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
            bad_header: Default::default(),
            stream: Default::default(),
            left: Default::default(),
            word: Default::default(),
            full: Default::default(),
            bad: Default::default(),
            taken: Default::default(),
            v_cmd: Default::default(),
            v_w: Default::default(),
            v_s: Default::default(),
            v_x: Default::default(),
            byte_at_top: Default::default(),
            out_word: Default::default(),
            out_left: Default::default(),
            out_busy: Default::default(),
            id_none: b3(0),
            id_cmd: b3(HEADER_CMD),
            id_w: b3(HEADER_WEIGHT),
            id_s: b3(HEADER_SCALE),
            id_x: b3(HEADER_ACTIVATION),
            header_cmd: b8(HEADER_CMD as usize),
            header_w: b8(HEADER_WEIGHT as usize),
            header_s: b8(HEADER_SCALE as usize),
            header_x: b8(HEADER_ACTIVATION as usize),
            n_cmd: b8(4),
            n_w: b8(bytes_for(WB)),
            n_s: b8(bytes_for(S)),
            n_x: b8(bytes_for(X)),
            n_o: b8(bytes_for(O)),
            zero8: b8(0),
            one8: b8(1),
            top_shift: Constant::new(twos::<16>((SR - 8) as i64)),
            off_cmd: off(32),
            off_w: off(WB),
            off_s: off(S),
            off_x: off(X),
        }
    }
}

impl<const WB: usize, const X: usize, const S: usize, const O: usize, const SR: usize, const OB: usize> Logic
    for ByteStreamBridge<WB, X, S, O, SR, OB>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, stream, left, word, full, bad, out_word, out_left, out_busy, v_cmd, v_w, v_s, v_x);
        // Input side.
        self.rx_ready.next = !self.full.q.val();
        self.bad_header.next = self.bad.q.val();
        self.cmd_data.next = self.word.q.val().get_bits::<32>(self.off_cmd.val().index());
        self.w_data.next = self.word.q.val().get_bits::<WB>(self.off_w.val().index());
        self.s_data.next = self.word.q.val().get_bits::<S>(self.off_s.val().index());
        self.x_data.next = self.word.q.val().get_bits::<X>(self.off_x.val().index());
        self.cmd_valid.next = self.v_cmd.q.val();
        self.w_valid.next = self.v_w.q.val();
        self.s_valid.next = self.v_s.q.val();
        self.x_valid.next = self.v_x.q.val();
        self.taken.next = (self.cmd_valid.val() & self.cmd_ready.val())
            | (self.w_valid.val() & self.w_ready.val())
            | (self.s_valid.val() & self.s_ready.val())
            | (self.x_valid.val() & self.x_ready.val());
        if self.taken.val() {
            self.full.d.next = false;
            self.v_cmd.d.next = false;
            self.v_w.d.next = false;
            self.v_s.d.next = false;
            self.v_x.d.next = false;
            self.stream.d.next = self.id_none.val();
        }
        self.byte_at_top.next = bit_cast::<SR, 8>(self.rx_data.val()) << self.top_shift.val();
        if self.rx_valid.val() & !self.full.q.val() {
            if self.stream.q.val() == self.id_none.val() {
                if self.rx_data.val() == self.header_cmd.val() {
                    self.stream.d.next = self.id_cmd.val();
                    self.left.d.next = self.n_cmd.val();
                } else if self.rx_data.val() == self.header_w.val() {
                    self.stream.d.next = self.id_w.val();
                    self.left.d.next = self.n_w.val();
                } else if self.rx_data.val() == self.header_s.val() {
                    self.stream.d.next = self.id_s.val();
                    self.left.d.next = self.n_s.val();
                } else if self.rx_data.val() == self.header_x.val() {
                    self.stream.d.next = self.id_x.val();
                    self.left.d.next = self.n_x.val();
                } else {
                    self.bad.d.next = true;
                }
            } else {
                self.word.d.next = (self.word.q.val() >> 8) | self.byte_at_top.val();
                self.left.d.next = self.left.q.val() - self.one8.val();
                if self.left.q.val() == self.one8.val() {
                    self.full.d.next = true;
                    self.v_cmd.d.next = self.stream.q.val() == self.id_cmd.val();
                    self.v_w.d.next = self.stream.q.val() == self.id_w.val();
                    self.v_s.d.next = self.stream.q.val() == self.id_s.val();
                    self.v_x.d.next = self.stream.q.val() == self.id_x.val();
                }
            }
        }
        // Output side: a word is taken only when its last byte has gone.
        self.o_ready.next = !self.out_busy.q.val();
        self.tx_valid.next = self.out_busy.q.val();
        self.tx_data.next = self.out_word.q.val().get_bits::<8>(0);
        if self.tx_valid.val() & self.tx_ready.val() {
            self.out_word.d.next = self.out_word.q.val() >> 8;
            self.out_left.d.next = self.out_left.q.val() - self.one8.val();
            if self.out_left.q.val() == self.one8.val() {
                self.out_busy.d.next = false;
            }
        }
        if self.o_valid.val() & self.o_ready.val() {
            self.out_word.d.next = bit_cast::<OB, O>(self.o_data.val());
            self.out_left.d.next = self.n_o.val();
            self.out_busy.d.next = true;
        }
        if self.reset.val() {
            self.stream.d.next = self.id_none.val();
            self.full.d.next = false;
            self.v_cmd.d.next = false;
            self.v_w.d.next = false;
            self.v_s.d.next = false;
            self.v_x.d.next = false;
            self.bad.d.next = false;
            self.out_left.d.next = self.zero8.val();
            self.out_busy.d.next = false;
        }
    }
}
