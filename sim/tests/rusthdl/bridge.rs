//! The board's host link in rust-hdl's simulator: the byte bridge in front of
//! the accelerator, driven through the driver's `bytelink` framing with random
//! stalls on both byte streams, against `integer_forward_naive`; the UART on
//! its own (loopback, overrun); and the whole board top (UART + bridge +
//! accelerator) driven over a bit-level serial line.

use crate::common::*;
use onebit_core::reference::integer_forward_naive;
use onebit_core::synth::SplitMix64;
use onebit_core::ArrayConfig;
use onebit_core::ports::BytePorts;
use onebit_core::wire::framing;
use onebit_driver::bytelink::{self, ByteLinkDevice, SerialLink};
use onebit_driver::{run_layer, Deadline, DriverError, Job, Program, StallPolicy};
use onebit_hdl::rust_hdl::prelude::*;
use onebit_hdl::uart::{baud_divisor, UartRx, UartTx};
use proptest::prelude::*;

onebit_hdl::board_for!(b4x3, crate::common::T4X3);
onebit_hdl::board_for!(b3x2, crate::common::T3X2);

fn check_bridged<B: BytePorts>(cfg: &ArrayConfig, dev: B, seed: u64, k: usize, n: usize, m: usize, stall: f32) -> B {
    let mut rng = SplitMix64(seed);
    let layer = random_layer(&mut rng, cfg, k, n);
    let x = random_activations(&mut rng, cfg, m, k);
    let want = integer_forward_naive(cfg, &layer, x.view()).unwrap();
    let p = Program::compile(cfg, &layer, x.view()).unwrap();
    let stalls = (stall > 0.0).then_some(StallPolicy { seed: seed ^ 0xb7e, stall });
    let mut dev = ByteLinkDevice::new(dev, *cfg).with_stalls(stalls);
    let run = run_layer(&mut dev, &p, "bridged", Deadline::for_config(cfg)).unwrap();
    assert_eq!(run.output, want, "{cfg}: K={k} N={n} M={m} seed={seed} stall={stall}");
    dev.ports
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, .. ProptestConfig::default() })]

    /// 4×3: 32-bit activation words (4 bytes), 4-bit weight beats (1 byte),
    /// 10-bit outputs (2 bytes).
    #[test]
    fn bridged_t4x3_matches_reference(seed: u64, k in 1usize..10, n in 1usize..7, m in 1usize..8, stall in 0.0f32..0.6) {
        check_bridged(&T4X3, b4x3::build_bridged().unwrap(), seed, k, n, m, stall);
    }

    /// 3×2: 18-bit activation words (3 bytes, 6 unused bits), 3-bit beats, 14-bit outputs.
    #[test]
    fn bridged_t3x2_matches_reference(seed: u64, k in 1usize..8, n in 1usize..5, m in 1usize..5, stall in 0.0f32..0.6) {
        check_bridged(&T3X2, b3x2::build_bridged().unwrap(), seed, k, n, m, stall);
    }
}

/// The preset the iCE40 bitstream carries, once, with stalls.
#[test]
fn bridged_ice40_up5k_matches_reference() {
    let dev = onebit_hdl::board::presets::ice40_up5k::build_bridged().unwrap();
    check_bridged(&ArrayConfig::ICE40_UP5K, dev, 11, 13, 9, 3, 0.3);
}

/// A header byte that names no stream is dropped and flagged; the link then
/// carries a program as before.
#[test]
fn bad_header_is_flagged_and_skipped() {
    let mut dev = b4x3::build_bridged().unwrap();
    assert!(!dev.bad_header.val());
    for byte in [0x00u8, 0x7F] {
        dev.set_rx(true, byte);
        dev.set_tx_ready(true);
        dev.eval();
        assert!(dev.rx_ready());
        dev.tick();
    }
    dev.set_rx(false, 0);
    dev.eval();
    assert!(dev.bad_header.val());
    check_bridged(&T4X3, dev, 5, 6, 4, 2, 0.2);
}

#[derive(LogicBlock)]
struct Loopback {
    clock: Signal<In, Clock>,
    data: Signal<In, Bits<8>>,
    valid: Signal<In, Bit>,
    ready: Signal<Out, Bit>,
    out_data: Signal<Out, Bits<8>>,
    out_valid: Signal<Out, Bit>,
    out_ready: Signal<In, Bit>,
    overrun: Signal<Out, Bit>,
    frame_error: Signal<Out, Bit>,
    tx: UartTx,
    rx: UartRx,
}

impl Logic for Loopback {
    #[hdl_gen]
    fn update(&mut self) {
        self.tx.clock.next = self.clock.val();
        self.rx.clock.next = self.clock.val();
        self.rx.clear.next = false;
        self.tx.data.next = self.data.val();
        self.tx.valid.next = self.valid.val();
        self.ready.next = self.tx.ready.val();
        self.rx.rx.next = self.tx.tx.val();
        self.out_data.next = self.rx.data.val();
        self.out_valid.next = self.rx.valid.val();
        self.rx.ready.next = self.out_ready.val();
        self.overrun.next = self.rx.overrun.val();
        self.frame_error.next = self.rx.frame_error.val();
    }
}

fn loopback(divisor: u16) -> Loopback {
    let mut l = Loopback {
        clock: Default::default(),
        data: Default::default(),
        valid: Default::default(),
        ready: Default::default(),
        out_data: Default::default(),
        out_valid: Default::default(),
        out_ready: Default::default(),
        overrun: Default::default(),
        frame_error: Default::default(),
        tx: UartTx::new(divisor),
        rx: UartRx::new(divisor),
    };
    l.connect_all();
    l
}

fn tick<B: Block>(uut: &mut B, clock: fn(&mut B) -> &mut Signal<In, Clock>) {
    clock(uut).next = Clock { clk: true };
    settle(uut);
    clock(uut).next = Clock { clk: false };
    settle(uut);
}

/// Bytes sent by the transmitter arrive at the receiver unchanged and in
/// order, with random gaps on the sending side and a consumer that takes each
/// byte late (but within a byte time).
#[test]
fn uart_loopback_carries_every_byte() {
    for divisor in [4u16, 5, 13] {
        let mut l = loopback(divisor);
        let mut rng = SplitMix64(divisor as u64);
        let bytes: Vec<u8> = (0..40)
            .map(|i| {
                if i < 2 {
                    [0x00, 0xFF][i]
                } else {
                    rng.next_u64() as u8
                }
            })
            .collect();
        let (mut sent, mut got, mut waited) = (0usize, vec![], 0u64);
        let mut presenting = false;
        for _ in 0..(bytes.len() as u64 * 14 * divisor as u64 + 100) {
            if sent < bytes.len() && !presenting {
                presenting = !rng.next_u64().is_multiple_of(3);
            }
            l.data.next = (*bytes.get(sent).unwrap_or(&0) as u64).into();
            l.valid.next = presenting;
            let take = waited > divisor as u64 * 3;
            l.out_ready.next = take;
            settle(&mut l);
            if presenting && l.ready.val() {
                sent += 1;
                presenting = false;
            }
            if l.out_valid.val() {
                waited += 1;
                if take {
                    got.push(l.out_data.val().to_u64() as u8);
                    waited = 0;
                }
            }
            tick(&mut l, |l| &mut l.clock);
        }
        assert_eq!(sent, bytes.len(), "divisor {divisor}");
        assert_eq!(got, bytes, "divisor {divisor}");
        assert!(!l.overrun.val() && !l.frame_error.val());
    }
}

/// A receiver whose bytes are never taken keeps the first and flags the
/// second as an overrun.
#[test]
fn uart_overrun_is_flagged() {
    let mut l = loopback(4);
    let mut sent = 0;
    for _ in 0..200 {
        l.data.next = (0xA5u64 + sent as u64).into();
        l.valid.next = sent < 2;
        l.out_ready.next = false;
        settle(&mut l);
        if sent < 2 && l.ready.val() {
            sent += 1;
        }
        tick(&mut l, |l| &mut l.clock);
    }
    assert_eq!(sent, 2);
    assert!(l.out_valid.val());
    assert_eq!(l.out_data.val().to_u64(), 0xA5);
    assert!(l.overrun.val());
    assert!(!l.frame_error.val());
}

/// A host at the far end of the serial lines: sends bytes back to back
/// (8N1, `divisor` cycles per bit) and samples the board's line mid-bit.
struct SerialHost {
    divisor: u64,
    // Sending: the current frame's remaining bits (start, data, stop) and the
    // cycles left on the bit being driven.
    frame: Vec<bool>,
    bit_left: u64,
    // Receiving: cycles to the next sample, bits sampled so far.
    rx_busy: bool,
    rx_wait: u64,
    rx_bits: Vec<bool>,
    received: Vec<u8>,
    framing_errors: usize,
}

impl SerialHost {
    fn new(divisor: u16) -> Self {
        SerialHost {
            divisor: divisor as u64,
            frame: vec![],
            bit_left: 0,
            rx_busy: false,
            rx_wait: 0,
            rx_bits: vec![],
            received: vec![],
            framing_errors: 0,
        }
    }
    /// Idle when no frame is being sent.
    fn idle(&self) -> bool {
        self.frame.is_empty()
    }
    fn send(&mut self, byte: u8) {
        assert!(self.idle());
        self.frame = std::iter::once(false)
            .chain((0..8).map(|i| (byte >> i) & 1 == 1))
            .chain(std::iter::once(true))
            .rev()
            .collect();
        self.bit_left = self.divisor;
    }
    /// The level this host drives in the coming cycle.
    fn line(&self) -> bool {
        self.frame.last().copied().unwrap_or(true)
    }
    /// Advance one cycle: `board_tx` is the board's line in this cycle.
    fn step(&mut self, board_tx: bool) {
        if !self.frame.is_empty() {
            self.bit_left -= 1;
            if self.bit_left == 0 {
                self.frame.pop();
                self.bit_left = self.divisor;
            }
        }
        if !self.rx_busy {
            if !board_tx {
                self.rx_busy = true;
                self.rx_wait = self.divisor / 2;
                self.rx_bits.clear();
            }
        } else if self.rx_wait > 1 {
            self.rx_wait -= 1;
        } else {
            self.rx_bits.push(board_tx);
            self.rx_wait = self.divisor;
            if self.rx_bits.len() == 10 {
                self.rx_busy = false;
                if self.rx_bits[0] || !self.rx_bits[9] {
                    self.framing_errors += 1;
                }
                self.received.push(
                    (1..9)
                        .rev()
                        .fold(0u8, |v, i| (v << 1) | self.rx_bits[i] as u8),
                );
            }
        }
    }
}

/// Per cycle of a board run: the host's line (`uart_rx`), then the board's
/// `uart_tx`, `led_error` and `led_alive` after settling.
type BoardTrace = Vec<[bool; 4]>;

/// The whole board top (UART 8N1 at 4 cycles per bit + bridge + accelerator)
/// over bit-level serial lines, the host sending bytes back to back and
/// waiting only for each DRAIN's words: results must match the reference and
/// no error LED may light. Returns the cycle trace.
fn board_over_uart(seed: u64, k: usize, n: usize, m: usize) -> BoardTrace {
    let cfg = T4X3;
    let divisor = baud_divisor(400, 100).unwrap();
    assert_eq!(divisor, 4);
    let mut board = b4x3::build_board(400, 100, false).unwrap();
    let mut rng = SplitMix64(seed);
    let layer = random_layer(&mut rng, &cfg, k, n);
    let x = random_activations(&mut rng, &cfg, m, k);
    let want = integer_forward_naive(&cfg, &layer, x.view()).unwrap();
    let p = Program::compile(&cfg, &layer, x.view()).unwrap();
    let segments = bytelink::encode(&Job::of(&p)).unwrap();
    let per_beat = framing::output_beat_bytes(&cfg);
    let mut host = SerialHost::new(divisor);
    let mut expected_bytes = 0;
    let mut trace: BoardTrace = vec![];
    let mut step = |board: &mut b4x3::Board, host: &mut SerialHost| {
        board.uart_rx.next = host.line();
        settle(board);
        let line = board.uart_tx.val();
        trace.push([
            host.line(),
            line,
            board.led_error.val(),
            board.led_alive.val(),
        ]);
        tick(board, |b| &mut b.clock);
        host.step(line);
        assert!(trace.len() < 400_000, "board run did not finish");
    };
    for _ in 0..50 {
        step(&mut board, &mut host);
    }
    for seg in &segments {
        for &b in &seg.bytes {
            host.send(b);
            while !host.idle() {
                step(&mut board, &mut host);
            }
        }
        expected_bytes += seg.outputs_after * per_beat;
        while host.received.len() < expected_bytes {
            step(&mut board, &mut host);
        }
    }
    for _ in 0..100 {
        step(&mut board, &mut host);
    }
    assert_eq!(host.framing_errors, 0);
    assert_eq!(
        host.received.len(),
        expected_bytes,
        "bytes beyond the program's words"
    );
    let beats = bytelink::decode_beats(&cfg, &host.received);
    assert_eq!(p.assemble(&beats).unwrap(), want);
    assert!(!board.led_error.val(), "error LED lit");
    trace
}

#[test]
fn board_over_uart_matches_reference() {
    board_over_uart(21, 7, 5, 3);
}

/// The board top's generated Verilog lints clean (Verilator -Wall with the
/// board waivers, `BOARD_WAIVERS`), elaborates in yosys, and replays a rust-hdl board run
/// over the UART cycle for cycle in Icarus Verilog: the UART, bridge and
/// board wiring mean in Verilog what they mean in rust-hdl.
#[test]
fn board_verilog_lints_and_replays_rust_hdl() {
    use onebit_hdl::verilog;
    let v = verilog::generate(&b4x3::build_board(400, 100, false).unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("onebit-hdl-board-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let top = dir.join("top.v");
    std::fs::write(&top, &v).unwrap();
    verilog::verilator_lint_with(&top, &verilog::BOARD_WAIVERS).unwrap();
    verilog::yosys_elaborate(&top).unwrap();
    let ice40 = dir.join("ice40.v");
    std::fs::write(
        &ice40,
        verilog::generate(
            &onebit_hdl::board::presets::ice40_up5k::build_board(12_000_000, 115_200, true)
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    verilog::verilator_lint_with(&ice40, &verilog::BOARD_WAIVERS).unwrap();

    let trace = board_over_uart(22, 5, 4, 2);
    let stim: String = trace
        .iter()
        .map(|c| {
            format!(
                "{:x}\n",
                c.iter()
                    .enumerate()
                    .map(|(i, &b)| (b as u8) << i)
                    .sum::<u8>()
            )
        })
        .collect();
    std::fs::write(dir.join("stim.hex"), stim).unwrap();
    let n = trace.len();
    let tb = format!(
        r#"
module tb;
  reg clock = 0;
  reg uart_rx;
  wire uart_tx, led_error, led_alive;
  top dut(.clock(clock), .uart_rx(uart_rx), .uart_tx(uart_tx), .led_error(led_error), .led_alive(led_alive));
  reg [3:0] stim [0:{n1}];
  integer i, errors;
  initial begin
    $readmemh("stim.hex", stim);
    errors = 0;
    for (i = 0; i < {n}; i = i + 1) begin
      uart_rx = stim[i][0];
      #1;
      if ({{led_alive, led_error, uart_tx}} !== stim[i][3:1]) begin
        errors = errors + 1;
        if (errors < 10) $display("cycle %0d: verilog %b, rust-hdl %b", i, {{led_alive, led_error, uart_tx}}, stim[i][3:1]);
      end
      clock = 1; #1; clock = 0; #1;
    end
    $display("REPLAY cycles=%0d errors=%0d", {n}, errors);
    $finish;
  end
endmodule
"#,
        n1 = n - 1
    );
    std::fs::write(dir.join("tb.v"), tb).unwrap();
    let compile = std::process::Command::new("iverilog")
        .current_dir(&dir)
        .args(["-g2012", "-o", "tb.vvp", "-s", "tb", "tb.v", "top.v"])
        .output()
        .expect("iverilog must be installed (make deps installs it)");
    assert!(
        compile.status.success(),
        "iverilog failed:\n{}",
        String::from_utf8_lossy(&compile.stderr)
    );
    let sim = std::process::Command::new("vvp")
        .current_dir(&dir)
        .arg("tb.vvp")
        .output()
        .expect("vvp must be installed");
    let log = String::from_utf8_lossy(&sim.stdout);
    assert!(
        log.contains(&format!("REPLAY cycles={n} errors=0")),
        "board Verilog and rust-hdl differ:\n{log}"
    );
    // The line must have carried traffic both ways for the replay to mean something.
    assert!(trace.iter().any(|c| !c[0]) && trace.iter().any(|c| !c[1]));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The simulated board as a serial port for `bytelink::run_transport` (the
/// host code a real board is driven by): written bytes go out on the line
/// back to back; a read steps the simulation until bytes have arrived, or
/// returns 0 after 30 byte times of silence, like a port's read timeout.
struct SimulatedSerialPort {
    board: b4x3::Board,
    host: SerialHost,
    read: usize,
    /// Bytes after this many written are lost on the line.
    drop_after: Option<usize>,
    written: usize,
}

impl SimulatedSerialPort {
    /// Hold the line low for the break time (two characters), then idle.
    fn send_break(&mut self) {
        let cycles = onebit_hdl::board::break_cycles(self.host.divisor as u16) as u64 + 4 * self.host.divisor;
        for _ in 0..cycles {
            self.board.uart_rx.next = false;
            settle(&mut self.board);
            tick(&mut self.board, |b| &mut b.clock);
        }
        // Idle until the board's reset has ended (two characters after the line rose).
        for _ in 0..2 * onebit_hdl::board::break_cycles(self.host.divisor as u16) as u64 {
            self.step();
        }
        self.read = self.host.received.len();
    }

    fn step(&mut self) {
        self.board.uart_rx.next = self.host.line();
        settle(&mut self.board);
        let line = self.board.uart_tx.val();
        tick(&mut self.board, |b| &mut b.clock);
        self.host.step(line);
    }
}

impl std::io::Write for SimulatedSerialPort {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            self.written += 1;
            if self.drop_after.is_some_and(|d| self.written > d) {
                continue;
            }
            self.host.send(b);
            while !self.host.idle() {
                self.step();
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Read for SimulatedSerialPort {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut quiet = 0;
        while self.host.received.len() == self.read && quiet < 30 * 10 * self.host.divisor {
            self.step();
            quiet += 1;
        }
        let n = (self.host.received.len() - self.read).min(buf.len());
        buf[..n].copy_from_slice(&self.host.received[self.read..self.read + n]);
        self.read += n;
        Ok(n)
    }
}

/// The host-side serial device (`SerialLink`, what a real board's port is
/// driven with) against the simulated board top: results match the
/// reference; a line that loses bytes leaves the board waiting, which the
/// driver reports (layer, step, phase) instead of hanging; a UART break then
/// resets the board, which runs the program again correctly.
#[test]
fn serial_link_drives_the_simulated_board_and_recovers_with_a_break() {
    let cfg = T4X3;
    let mut port = SimulatedSerialPort {
        board: b4x3::build_board(400, 100, false).unwrap(),
        host: SerialHost::new(4),
        read: 0,
        drop_after: None,
        written: 0,
    };
    let mut rng = SplitMix64(33);
    let (k, n, m) = (9, 4, 4);
    let layer = random_layer(&mut rng, &cfg, k, n);
    let x = random_activations(&mut rng, &cfg, m, k);
    let want = integer_forward_naive(&cfg, &layer, x.view()).unwrap();
    let p = Program::compile(&cfg, &layer, x.view()).unwrap();
    let deadline = Deadline::IdleTime(std::time::Duration::from_millis(300));
    let run = run_layer(&mut SerialLink { link: &mut port, config: cfg }, &p, "serial", deadline).unwrap();
    assert_eq!(run.output, want);
    // Every byte after the next 20 is lost: the board never gets its DRAIN.
    port.drop_after = Some(port.written + 20);
    match run_layer(&mut SerialLink { link: &mut port, config: cfg }, &p, "serial", deadline) {
        Err(DriverError::Device { layer, step, phase, fault, .. }) => {
            assert_eq!(layer, "serial");
            assert!(step.starts_with("tile 0") || step.starts_with("drain 0"), "{step}");
            assert!(fault.contains("stopped"), "{fault} ({phase})");
        }
        other => panic!("expected the board to be reported stopped, got {other:?}"),
    }
    // The bridge holds a half-received beat: a break resets it.
    port.drop_after = None;
    port.send_break();
    let run = run_layer(&mut SerialLink { link: &mut port, config: cfg }, &p, "serial", deadline).unwrap();
    assert_eq!(run.output, want, "after the break");
    assert!(!port.board.led_error.val(), "the break must not light the error LED");
}

/// The post-synthesis check of `make bitstream` (`onebit_sim::netlist_check`)
/// on the 4×3 board top (UART at 4 cycles per bit): its RTL, and the
/// netlists yosys makes of it for the iCE40 and the ECP5 on their cell
/// models, each run random layers over the serial line with idle gaps,
/// against the reference, with 0 mismatches. A board described wrongly (the
/// host framing for another array, or its LEDs taken for active-high when
/// they light low) must fail it.
#[test]
fn board_netlists_pass_the_post_synthesis_check() {
    use onebit_hdl::verilog::{synthesize_netlist_of, Family};
    use onebit_sim::netlist_check::{check_board_netlist, BoardNetlist, NetlistCheckOptions};
    let dir = std::env::temp_dir().join(format!("onebit-netlist-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let board_v = |name: &str, leds_active_low: bool| {
        let path = dir.join(name);
        let board = b4x3::build_board(400, 100, leds_active_low).unwrap();
        std::fs::write(&path, onebit_hdl::verilog::generate(&board).unwrap()).unwrap();
        path
    };
    let (rtl, rtl_low) = (board_v("board.v", false), board_v("board-leds-low.v", true));
    let mut opts = NetlistCheckOptions::for_config(T4X3, 4);
    opts.stall = 0.2;
    opts.timeout = std::time::Duration::from_secs(600);
    let rtl_only = BoardNetlist { files: vec![rtl.clone()], include_dirs: vec![], top: "top".into() };
    let r = check_board_netlist(&rtl_only, &opts, &dir.join("rtl")).unwrap();
    assert!(r.passed() && r.words > 0 && r.cases.len() == 3, "RTL: {r:?}");
    // LEDs that light low (the iCEBreaker's): dark is 1.
    let low = BoardNetlist { files: vec![rtl_low], include_dirs: vec![], top: "top".into() };
    let low_opts = NetlistCheckOptions { leds_active_low: true, cases: 1, ..opts.clone() };
    let r = check_board_netlist(&low, &low_opts, &dir.join("rtl-low")).unwrap();
    assert!(r.passed() && r.led_error_cycles == 0, "active-low RTL: {r:?}");
    let r = check_board_netlist(&low, &NetlistCheckOptions { leds_active_low: false, ..low_opts }, &dir.join("rtl-low-wrong")).unwrap();
    assert!(!r.passed() && r.led_error_cycles > 0 && r.mismatches == 0, "active-low LEDs read as active-high: {r:?}");
    // The iCE40 board as the flow builds it: behind an SB_PLL40_PAD (module
    // `board`, the PLL's pass-through model in the simulation).
    let pll = dir.join("board_pll.v");
    let dividers = onebit_hdl::pll::Ice40Pll::for_frequencies(12_000_000, 24_000_000).unwrap();
    std::fs::write(&pll, onebit_hdl::pll::ice40_pll_wrapper(&dividers)).unwrap();
    for (family, name) in [(Family::Ice40, "ice40"), (Family::Ecp5, "ecp5")] {
        let work = dir.join(name);
        std::fs::create_dir_all(&work).unwrap();
        let net = work.join("netlist.v");
        let (sources, top): (Vec<&std::path::Path>, &str) = match family {
            Family::Ice40 => (vec![&rtl, &pll], "board"),
            Family::Ecp5 => (vec![&rtl], "top"),
        };
        let cells = synthesize_netlist_of(&sources, top, family, &net).unwrap();
        if family == Family::Ice40 {
            assert!(std::fs::read_to_string(&net).unwrap().contains("SB_PLL40_PAD"), "the PLL is in the netlist");
        }
        let mut files = vec![net];
        files.extend(cells.files);
        let board = BoardNetlist { files, include_dirs: cells.include_dirs, top: top.into() };
        let r = check_board_netlist(&board, &opts, &work).unwrap();
        eprintln!("{name}: {} cycles in {:.1} s of vvp", r.cycles, r.vvp_seconds);
        assert!(r.passed() && r.words > 0, "{name} netlist: {r:?}");
    }
    // The host framing beats for a 3×2 array: the board cannot answer right.
    let wrong = NetlistCheckOptions { config: T3X2, ..opts.clone() };
    match check_board_netlist(&rtl_only, &wrong, &dir.join("wrong")) {
        Ok(r) => assert!(!r.passed(), "a mis-described board passed: {r:?}"),
        Err(e) => assert!(e.to_string().contains("board stopped") || e.to_string().contains("decode"), "{e}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
