//! The generated Verilog behaves exactly like the rust-hdl model it came
//! from. rust-hdl simulates the Rust `update()` code, not the Verilog, and the
//! array's and top's wiring is written twice (update() and hdl()), so this
//! replays a recorded rust-hdl run cycle by cycle in Icarus Verilog and
//! compares every output port in every cycle. (sim/ does the same with
//! Verilator at speed; this is the small, independent check next to the HDL.)

use crate::common::*;
use onebit_core::synth::SplitMix64;
use onebit_core::ArrayConfig;
use onebit_core::ports::DevicePorts;
use onebit_driver::{run_layer, Deadline, PortDevice, Program, StallPolicy};
use std::fmt::Write as _;
use std::process::Command;

/// Per cycle: the inputs set and the outputs seen after settling.
#[derive(Default, Clone)]
struct Cycle {
    cmd: (bool, u32),
    w: (bool, Vec<u32>),
    s: (bool, Vec<u32>),
    reset: bool,
    x: (bool, Vec<u32>),
    o_ready: bool,
    ready: [bool; 4],
    o_valid: bool,
    o_data: Vec<u32>,
}

struct Tracer<D> {
    dev: D,
    now: Cycle,
    trace: Vec<Cycle>,
}

impl<D: DevicePorts> DevicePorts for Tracer<D> {
    fn set_reset(&mut self, r: bool) {
        self.now.reset = r;
        self.dev.set_reset(r)
    }
    fn set_cmd(&mut self, v: bool, d: u32) {
        self.now.cmd = (v, d);
        self.dev.set_cmd(v, d)
    }
    fn set_weight(&mut self, v: bool, d: &[u32]) {
        self.now.w = (v, d.to_vec());
        self.dev.set_weight(v, d)
    }
    fn set_scale(&mut self, v: bool, d: &[u32]) {
        self.now.s = (v, d.to_vec());
        self.dev.set_scale(v, d)
    }
    fn set_activation(&mut self, v: bool, d: &[u32]) {
        self.now.x = (v, d.to_vec());
        self.dev.set_activation(v, d)
    }
    fn set_out_ready(&mut self, r: bool) {
        self.now.o_ready = r;
        self.dev.set_out_ready(r)
    }
    fn eval(&mut self) {
        self.dev.eval()
    }
    fn cmd_ready(&self) -> bool {
        self.dev.cmd_ready()
    }
    fn weight_ready(&self) -> bool {
        self.dev.weight_ready()
    }
    fn scale_ready(&self) -> bool {
        self.dev.scale_ready()
    }
    fn activation_ready(&self) -> bool {
        self.dev.activation_ready()
    }
    fn out_valid(&self) -> bool {
        self.dev.out_valid()
    }
    fn out_data(&self) -> Vec<u32> {
        self.dev.out_data()
    }
    fn tick(&mut self) {
        self.now.ready = [
            self.dev.cmd_ready(),
            self.dev.weight_ready(),
            self.dev.scale_ready(),
            self.dev.activation_ready(),
        ];
        self.now.o_valid = self.dev.out_valid();
        self.now.o_data = self.dev.out_data();
        self.trace.push(self.now.clone());
        self.dev.tick();
    }
}

/// Bits, LSB first, as a hex string MSB first.
fn hex(bits: &[bool]) -> String {
    let mut s = String::new();
    let n = bits.len().div_ceil(4);
    for d in (0..n).rev() {
        let mut v = 0;
        for b in 0..4 {
            if bits.get(d * 4 + b).copied().unwrap_or(false) {
                v |= 1 << b;
            }
        }
        write!(s, "{v:x}").unwrap();
    }
    s
}

fn push(bits: &mut Vec<bool>, value: u64, width: usize) {
    for i in 0..width {
        bits.push((value >> i) & 1 == 1);
    }
}

fn push_words(bits: &mut Vec<bool>, words: &[u32], width: usize) {
    for i in 0..width {
        bits.push(words.get(i / 32).is_some_and(|w| (w >> (i % 32)) & 1 == 1));
    }
}

fn replay_in_iverilog(name: &str, cfg: &ArrayConfig, verilog: &str, trace: &[Cycle]) {
    replay_files_in_iverilog(name, cfg, verilog, &[], &[], false, trace)
}

/// A synthesised netlist's replay on its family's cell models.
fn replay_netlist_in_iverilog(
    name: &str,
    cfg: &ArrayConfig,
    netlist: &str,
    cells: &onebit_hdl::verilog::CellModels,
    trace: &[Cycle],
) {
    let files: Vec<&std::path::Path> = cells.files.iter().map(|p| p.as_path()).collect();
    let dirs: Vec<&std::path::Path> = cells.include_dirs.iter().map(|p| p.as_path()).collect();
    replay_files_in_iverilog(name, cfg, netlist, &files, &dirs, true, trace)
}

/// The replay, with `libraries` (cell models) compiled beside the design and
/// `include_dirs` searched for their `` `include``s.
/// `data_when_valid`: compare `o_data` only in cycles where rust-hdl's
/// `o_valid` is high (the stream's contract); the valids and readies are
/// still compared in every cycle. A netlist may leave a data register
/// without a power-up value (iCE40 DSP registers have none), which shows as
/// X while no word is offered.
fn replay_files_in_iverilog(
    name: &str,
    cfg: &ArrayConfig,
    verilog: &str,
    libraries: &[&std::path::Path],
    include_dirs: &[&std::path::Path],
    data_when_valid: bool,
    trace: &[Cycle],
) {
    let (wb, xb, sb, ob) = (
        cfg.weight_beat_bits as usize,
        cfg.activation_beat_bits(),
        cfg.scale_beat_bits(),
        cfg.out_beat_bits(),
    );
    let in_w = 1 + 32 + 1 + wb + 1 + sb + 1 + xb + 1 + 1;
    let out_w = 4 + 1 + ob;
    let mut stim = String::new();
    for c in trace {
        let mut b = vec![];
        push(&mut b, c.cmd.0 as u64, 1);
        push(&mut b, c.cmd.1 as u64, 32);
        push(&mut b, c.w.0 as u64, 1);
        push_words(&mut b, &c.w.1, wb);
        push(&mut b, c.s.0 as u64, 1);
        push_words(&mut b, &c.s.1, sb);
        push(&mut b, c.x.0 as u64, 1);
        push_words(&mut b, &c.x.1, xb);
        push(&mut b, c.o_ready as u64, 1);
        push(&mut b, c.reset as u64, 1);
        for r in c.ready {
            push(&mut b, r as u64, 1);
        }
        push(&mut b, c.o_valid as u64, 1);
        push_words(&mut b, &c.o_data, ob);
        stim.push_str(&hex(&b));
        stim.push('\n');
    }
    let dir = std::env::temp_dir().join(format!("onebit-hdl-iverilog-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("top.v"), verilog).unwrap();
    std::fs::write(dir.join("stim.hex"), stim).unwrap();
    let n = trace.len();
    let tb = format!(
        r#"
module tb;
  reg clock = 0;
  reg cmd_valid; reg [31:0] cmd_data;
  reg w_valid; reg [{wb1}:0] w_data;
  reg s_valid; reg [{sb1}:0] s_data;
  reg x_valid; reg [{xb1}:0] x_data;
  reg o_ready; reg reset;
  wire cmd_ready, w_ready, s_ready, x_ready, o_valid;
  wire [{ob1}:0] o_data;
  top dut(.clock(clock), .reset(reset), .cmd_data(cmd_data), .cmd_valid(cmd_valid), .cmd_ready(cmd_ready),
          .w_data(w_data), .w_valid(w_valid), .w_ready(w_ready), .s_data(s_data), .s_valid(s_valid),
          .s_ready(s_ready), .x_data(x_data), .x_valid(x_valid), .x_ready(x_ready),
          .o_data(o_data), .o_valid(o_valid), .o_ready(o_ready));
  reg [{tw1}:0] stim [0:{n1}];
  reg [{ow1}:0] want;
  integer i, errors;
  initial begin
    $readmemh("stim.hex", stim);
    errors = 0;
    for (i = 0; i < {n}; i = i + 1) begin
      {{reset, o_ready, x_data, x_valid, s_data, s_valid, w_data, w_valid, cmd_data, cmd_valid}} = stim[i][{iw1}:0];
      want = stim[i][{tw1}:{in_w}];
      #1;
      if ({{o_valid, x_ready, s_ready, w_ready, cmd_ready}} !== want[4:0]
          || ((!{data_when_valid} || want[4]) && o_data !== want[{ow1}:5])) begin
        errors = errors + 1;
        if (errors < 10) $display("cycle %0d: verilog %h, rust-hdl %h", i, {{o_data, o_valid, x_ready, s_ready, w_ready, cmd_ready}}, want);
      end
      clock = 1; #1; clock = 0; #1;
    end
    $display("REPLAY cycles=%0d errors=%0d", {n}, errors);
    $finish;
  end
endmodule
"#,
        wb1 = wb - 1,
        xb1 = xb - 1,
        sb1 = sb - 1,
        ob1 = ob - 1,
        tw1 = in_w + out_w - 1,
        ow1 = out_w - 1,
        iw1 = in_w - 1,
        n1 = n - 1,
        data_when_valid = data_when_valid as u8,
    );
    std::fs::write(dir.join("tb.v"), tb).unwrap();
    let compile = Command::new("iverilog")
        .current_dir(&dir)
        // iCE40's cell models give inputs default values, which Icarus does not parse.
        .args(["-g2012", "-DNO_ICE40_DEFAULT_ASSIGNMENTS", "-o", "tb.vvp", "-s", "tb", "tb.v", "top.v"])
        .args(include_dirs.iter().flat_map(|d| [std::ffi::OsStr::new("-I"), d.as_os_str()]))
        .args(libraries)
        .output()
        .expect("iverilog must be installed (make deps installs it)");
    assert!(
        compile.status.success(),
        "{name}: iverilog failed:\n{}",
        String::from_utf8_lossy(&compile.stderr)
    );
    let sim = Command::new("vvp")
        .current_dir(&dir)
        .arg("tb.vvp")
        .output()
        .expect("vvp must be installed");
    let log = String::from_utf8_lossy(&sim.stdout);
    assert!(
        log.contains(&format!("REPLAY cycles={n} errors=0")),
        "{name}: Verilog and rust-hdl differ:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn record<D: DevicePorts>(dev: D, cfg: &ArrayConfig, seed: u64, k: usize, n: usize, m: usize) -> Vec<Cycle> {
    let mut rng = SplitMix64(seed);
    let layer = random_layer(&mut rng, cfg, k, n);
    let x = random_activations(&mut rng, cfg, m, k);
    let p = Program::compile(cfg, &layer, x.view()).unwrap();
    let t = Tracer { dev, now: Cycle::default(), trace: vec![] };
    let mut dev = PortDevice::new(t, *cfg).with_stalls(Some(StallPolicy { seed, stall: 0.3 }));
    // A reset in the middle of the recording: the reset port means in
    // Verilog what it means in rust-hdl.
    run_layer(&mut dev, &p, "replay", Deadline::for_config(cfg)).unwrap();
    onebit_driver::Device::reset(&mut dev).unwrap();
    run_layer(&mut dev, &p, "replay", Deadline::for_config(cfg)).unwrap();
    dev.ports.trace
}

#[test]
fn t4x3_verilog_replays_rust_hdl() {
    let v = onebit_hdl::verilog::generate(&t4x3::build().unwrap()).unwrap();
    let trace = record(t4x3::build().unwrap(), &T4X3, 3, 9, 7, 7);
    replay_in_iverilog("t4x3", &T4X3, &v, &trace);
}

#[test]
fn t1x1_and_t3x2_verilog_replay_rust_hdl() {
    let v = onebit_hdl::verilog::generate(&t1x1::build().unwrap()).unwrap();
    replay_in_iverilog("t1x1", &T1X1, &v, &record(t1x1::build().unwrap(), &T1X1, 4, 3, 2, 3));
    let v = onebit_hdl::verilog::generate(&t3x2::build().unwrap()).unwrap();
    replay_in_iverilog("t3x2", &T3X2, &v, &record(t3x2::build().unwrap(), &T3X2, 5, 7, 3, 4));
}

#[test]
fn t6x4_verilog_replays_rust_hdl() {
    use onebit_hdl::presets::t6x4;
    let cfg = ArrayConfig::T6X4;
    let v = onebit_hdl::verilog::generate(&t6x4::build().unwrap()).unwrap();
    replay_in_iverilog("t6x4", &cfg, &v, &record(t6x4::build().unwrap(), &cfg, 8, 13, 9, 6));
}

#[test]
fn sim16_verilog_replays_rust_hdl() {
    use onebit_hdl::presets::sim16;
    let v = onebit_hdl::verilog::generate(&sim16::build().unwrap()).unwrap();
    let trace = record(sim16::build().unwrap(), &ArrayConfig::SIM16, 6, 20, 18, 2);
    replay_in_iverilog("sim16", &ArrayConfig::SIM16, &v, &trace);
}

/// Post-synthesis equivalence: the netlist yosys makes of a small
/// configuration for `family` (synth_ice40 -dsp or synth_ecp5, written back as
/// Verilog) replays the rust-hdl run, random stalls and a reset included, on
/// the family's cell models in Icarus: every port, every cycle.
fn t4x3_netlist_replays_rust_hdl(family: onebit_hdl::verilog::Family, name: &str) {
    let v = onebit_hdl::verilog::generate(&t4x3::build().unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("onebit-netlist-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (rtl, net) = (dir.join("rtl.v"), dir.join("netlist.v"));
    std::fs::write(&rtl, &v).unwrap();
    let cells = onebit_hdl::verilog::synthesize_netlist(&rtl, family, &net).unwrap();
    let netlist = std::fs::read_to_string(&net).unwrap();
    // The g and h scalers' products are DSP blocks, so their models run too.
    let dsp = match family {
        onebit_hdl::verilog::Family::Ice40 => "SB_MAC16 ",
        onebit_hdl::verilog::Family::Ecp5 => "MULT18X18D ",
    };
    assert!(netlist.contains(dsp), "{name}: no {dsp}in the netlist");
    let trace = record(t4x3::build().unwrap(), &T4X3, 3, 9, 7, 7);
    replay_netlist_in_iverilog(name, &T4X3, &netlist, &cells, &trace);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn t4x3_ice40_netlist_replays_rust_hdl() {
    t4x3_netlist_replays_rust_hdl(onebit_hdl::verilog::Family::Ice40, "t4x3-ice40-netlist");
}

/// The same on ECP5: TRELLIS_FF, LUT4, CCU2C, DP16KD and the project's
/// MULT18X18D model (hdl/verilog/MULT18X18D_sim.v; yosys ships none).
#[test]
fn t4x3_ecp5_netlist_replays_rust_hdl() {
    t4x3_netlist_replays_rust_hdl(onebit_hdl::verilog::Family::Ecp5, "t4x3-ecp5-netlist");
}

