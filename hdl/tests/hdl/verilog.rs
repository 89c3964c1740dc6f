//! Every preset's Verilog (and the small test configurations') lints clean in
//! `verilator --lint-only -Wall` (with the waivers listed in
//! `onebit_hdl::verilog::VERILATOR_WAIVERS`) and elaborates in yosys.

use onebit_hdl::presets;
use onebit_hdl::verilog::{generate, verilator_lint, yosys_elaborate, VerilogError};
use rust_hdl::prelude::*;

fn check(name: &str, verilog: &str) {
    let dir = std::env::temp_dir().join(format!("onebit-hdl-verilog-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("onebit_accelerator.v");
    std::fs::write(&path, verilog).unwrap();
    verilator_lint(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    yosys_elaborate(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        verilog.contains("\nmodule top("),
        "{name}: the top module must be `top`"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim16_lints_and_elaborates() {
    check("sim16", &generate(&presets::sim16::build().unwrap()).unwrap());
}

#[test]
fn ecp5_lints_and_elaborates() {
    check("ecp5", &generate(&presets::ecp5::build().unwrap()).unwrap());
}

#[test]
fn ice40_lints_and_elaborates() {
    check("ice40", &generate(&presets::ice40::build().unwrap()).unwrap());
}

#[test]
fn test_configs_lint_and_elaborate() {
    check("t4x3", &generate(&crate::common::t4x3::build().unwrap()).unwrap());
    check("t1x1", &generate(&crate::common::t1x1::build().unwrap()).unwrap());
    check("t3x2", &generate(&crate::common::t3x2::build().unwrap()).unwrap());
    check("t4x4", &generate(&crate::common::t4x4::build().unwrap()).unwrap());
    check("t6x4", &generate(&presets::t6x4::build().unwrap()).unwrap());
}

/// A design that fails rust-hdl's checks is an error, not a panic: here an
/// accelerator whose signals were never connected.
#[test]
fn check_all_problems_are_errors() {
    let unconnected = crate::common::t1x1::Accelerator::new(&crate::common::T1X1).unwrap();
    assert!(matches!(generate(&unconnected), Err(VerilogError::Check(_))));
}

/// A mismatch between the const widths and the configuration is refused.
#[test]
fn widths_must_match_the_config() {
    assert!(crate::common::t1x1::Accelerator::new(&crate::common::T3X2).is_err());
    let mut cfg = crate::common::T1X1;
    cfg.max_k = 1 << 24;
    assert!(crate::common::t1x1::Accelerator::new(&cfg).is_err());
    let _ = presets::ice40::build().unwrap().connect_all();
}

/// The project's MULT18X18D model (ECP5 post-synthesis simulation) against
/// Verilog's own `*`: a module with a signed 16×12, an unsigned 18×18 and a
/// signed 6×17 product is synthesised with synth_ecp5 (each maps to one
/// MULT18X18D), and the netlist on the ECP5 cell models gives the RTL's
/// products on 2,000 random operands plus the extremes, in Icarus.
/// Compiles module `tb` from `sources` (files and iverilog flags, relative to
/// `dir`) in Icarus and returns what vvp printed; a compile error fails the
/// test, naming `what`.
fn run_tb_in_icarus(what: &str, dir: &std::path::Path, sources: &[std::ffi::OsString]) -> String {
    let compile = std::process::Command::new("iverilog")
        .current_dir(dir)
        .args(["-g2012", "-o", "tb.vvp", "-s", "tb"])
        .args(sources)
        .output()
        .expect("iverilog must be installed (make deps installs it)");
    assert!(compile.status.success(), "{what}: iverilog failed:\n{}", String::from_utf8_lossy(&compile.stderr));
    let sim = std::process::Command::new("vvp").current_dir(dir).arg("tb.vvp").output().expect("vvp must be installed");
    String::from_utf8_lossy(&sim.stdout).into_owned()
}

#[test]
fn ecp5_mult18x18d_model_matches_rtl_products() {
    use onebit_hdl::verilog::{synthesize_netlist, Family};
    let dir = std::env::temp_dir().join(format!("onebit-mult18-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rtl = "module top(input signed [15:0] a, input signed [11:0] b, input [17:0] c, input [17:0] d,\n\
               input signed [5:0] e, input signed [16:0] f,\n\
               output signed [27:0] p, output [35:0] q, output signed [22:0] r);\n\
               assign p = a * b;\n  assign q = c * d;\n  assign r = e * f;\nendmodule\n";
    std::fs::write(dir.join("rtl.v"), rtl).unwrap();
    let cells = synthesize_netlist(&dir.join("rtl.v"), Family::Ecp5, &dir.join("netlist.v")).unwrap();
    let netlist = std::fs::read_to_string(dir.join("netlist.v")).unwrap();
    assert_eq!(netlist.matches("MULT18X18D ").count(), 3, "one DSP per product:\n{netlist}");
    // The RTL as module `rtl`, beside the netlist's `top`.
    std::fs::write(dir.join("rtl_ref.v"), rtl.replace("module top(", "module rtl(")).unwrap();
    let tb = "module tb;\n\
      reg signed [15:0] a; reg signed [11:0] b; reg [17:0] c, d; reg signed [5:0] e; reg signed [16:0] f;\n\
      wire signed [27:0] p, p0; wire [35:0] q, q0; wire signed [22:0] r, r0;\n\
      top net(.a(a), .b(b), .c(c), .d(d), .e(e), .f(f), .p(p), .q(q), .r(r));\n\
      rtl golden(.a(a), .b(b), .c(c), .d(d), .e(e), .f(f), .p(p0), .q(q0), .r(r0));\n\
      integer i, errors, seed;\n\
      initial begin\n\
        errors = 0; seed = 7;\n\
        for (i = 0; i < 2004; i = i + 1) begin\n\
          if (i < 4) begin\n\
            a = (i & 1) ? 16'sh7fff : -16'sh8000; b = (i & 2) ? 12'sh7ff : -12'sh800;\n\
            c = (i & 1) ? 18'h3ffff : 0; d = (i & 2) ? 18'h3ffff : 1;\n\
            e = (i & 1) ? 6'sh1f : -6'sh20; f = (i & 2) ? 17'sh0ffff : -17'sh10000;\n\
          end else begin\n\
            a = $random(seed); b = $random(seed); c = $random(seed); d = $random(seed); e = $random(seed); f = $random(seed);\n\
          end\n\
          #1;\n\
          if (p !== p0 || q !== q0 || r !== r0) begin\n\
            errors = errors + 1;\n\
            if (errors < 10) $display(\"a=%0d b=%0d c=%0d d=%0d e=%0d f=%0d: netlist %0d %0d %0d, rtl %0d %0d %0d\", a, b, c, d, e, f, p, q, r, p0, q0, r0);\n\
          end\n\
        end\n\
        $display(\"PRODUCTS checked=%0d errors=%0d\", i, errors);\n\
        $finish;\n\
      end\n\
    endmodule\n";
    std::fs::write(dir.join("tb.v"), tb).unwrap();
    let mut sources: Vec<std::ffi::OsString> = ["tb.v", "netlist.v", "rtl_ref.v"].map(Into::into).to_vec();
    for d in &cells.include_dirs {
        sources.push("-I".into());
        sources.push(d.into());
    }
    sources.extend(cells.files.iter().map(Into::into));
    let log = run_tb_in_icarus("MULT18X18D", &dir, &sources);
    assert!(log.contains("PRODUCTS checked=2004 errors=0"), "the MULT18X18D model differs from `*`:\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The h scaler's Verilog (`hscaler::hscaler_verilog`, its generic and its
/// ECP5 form) against `numerics::scale_output`, in Icarus, a pair entering
/// every cycle, for the presets and two narrow test configurations: every acc·h equal to the smallest product that rounds to
/// ±(m + 1) and to one less (an off-by-one in either saturation threshold
/// fails here, checked by mutation), products straddling them for many h,
/// the extremes, and random pairs.
#[test]
fn hscaler_verilog_saturates_like_scale_output_at_its_thresholds() {
    use onebit_core::numerics::scale_output;
    use onebit_core::ArrayConfig;
    // T6X4 and T4X3 have narrow outputs, so both saturations are reachable
    // (on sim16 |acc·h| stays below both thresholds).
    let configs = [("sim16", ArrayConfig::SIM16), ("ice40_up5k", ArrayConfig::ICE40_UP5K), ("ecp5", ArrayConfig::ECP5), ("t6x4", ArrayConfig::T6X4), ("t4x3", crate::common::T4X3)];
    let mut exact_hits = 0;
    for (name, cfg) in configs {
        let (acc_bits, h_bits, o) = (cfg.acc_bits() as usize, cfg.h_bits as usize, cfg.out_bits as usize);
        let (shift, m) = (cfg.h_shift() as i64, ArrayConfig::sym_max(cfg.out_bits));
        let round = if shift == 0 { 0 } else { 1i64 << (shift - 1) };
        let (acc_max, h_max) = ((1i64 << (acc_bits - 1)) - 1, (1i64 << (h_bits - 1)) - 1);
        let (acc_min, h_min) = (-acc_max - 1, -h_max - 1);
        let mut pairs = vec![(acc_max, h_max), (acc_min, h_min), (acc_min, h_max), (acc_max, h_min), (0, 0), (1, 1), (-1, 1)];
        // The smallest products that round to m + 1 and to -(m + 1), and one
        // less: every factorisation acc·h of them within the ports' ranges.
        for t in [((m + 1) << shift) - round, ((-m) << shift) - round] {
            for p in [t - 1, t] {
                for h in (h_min..=h_max).filter(|&h| h != 0 && p % h == 0) {
                    if (acc_min..=acc_max).contains(&(p / h)) {
                        pairs.push((p / h, h));
                        exact_hits += 1;
                    }
                }
            }
            // Products straddling it, for many h.
            for h in (1..=h_max).step_by(((h_max / 97).max(1)) as usize).chain([h_max]) {
                for sign in [1i64, -1] {
                    let h = sign * h;
                    let a0 = t.div_euclid(h);
                    for a in a0 - 1..=a0 + 1 {
                        if (acc_min..=acc_max).contains(&a) && (h_min..=h_max).contains(&h) {
                            pairs.push((a, h));
                        }
                    }
                }
            }
        }
        let mut rng = onebit_core::synth::SplitMix64(5);
        for _ in 0..500 {
            let a = acc_min + (rng.next_u64() % (acc_max - acc_min + 1) as u64) as i64;
            let h = h_min + (rng.next_u64() % (h_max - h_min + 1) as u64) as i64;
            pairs.push((a, h));
        }
        let mask = |v: i64, w: usize| (v as u64) & ((1u64 << w) - 1);
        let vectors: String = pairs
            .iter()
            .map(|&(a, h)| format!("{:016x} {:016x} {:016x}\n", mask(a, acc_bits), mask(h, h_bits), mask(scale_output(&cfg, a, h), o)))
            .collect();
        // The generic form, and the ECP5 form (registered MULT18X18Ds,
        // simulated on the project's model) that the ECP5 synthesis reads
        // where `ONEBIT_ECP5_DSP` is defined.
        for form in ["generic", "ecp5_dsp"] {
            let dir = std::env::temp_dir().join(format!("onebit-hscaler-{}-{name}-{form}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut body = onebit_hdl::hscaler::hscaler_verilog(acc_bits, h_bits, o, shift as usize, m);
            let mut sources: Vec<std::ffi::OsString> = vec!["tb.v".into(), "hs.v".into()];
            if form == "ecp5_dsp" {
                body = format!("`define ONEBIT_ECP5_DSP\n{body}");
                std::fs::write(dir.join("MULT18X18D_sim.v"), onebit_hdl::verilog::ECP5_MULT18X18D_SIM).unwrap();
                sources.push("MULT18X18D_sim.v".into());
                let dsps = if acc_bits <= 18 { 1 } else { 2 };
                assert_eq!(onebit_hdl::hscaler::hscaler_ecp5_dsp(acc_bits, h_bits, o, shift as usize, m).matches("MULT18X18D #").count(), dsps);
            }
            let module = format!(
                "module hs(input clock, input reset, input valid_in, input [{}:0] acc_in, input [{}:0] h_in, output valid_out, output [{}:0] word_out);\n{body}endmodule\n",
                acc_bits - 1,
                h_bits - 1,
                o - 1
            );
            // A pair every cycle; each word is checked H_STAGES edges later.
            let tb = format!(
                "module tb;\n\
                 reg clock = 0, valid_in = 0, reset = 0;\n\
                 reg [{a1}:0] acc_in = 0; reg [{h1}:0] h_in = 0; wire [{o1}:0] word_out; wire valid_out;\n\
                 reg [63:0] v [0:{last}];\n\
                 integer i, j, errors;\n\
                 hs dut(.clock(clock), .reset(reset), .valid_in(valid_in), .acc_in(acc_in), .h_in(h_in), .valid_out(valid_out), .word_out(word_out));\n\
                 initial begin\n\
                   $readmemh(\"vectors.hex\", v); errors = 0;\n\
                   for (i = 0; i < {n} + {lat} - 1; i = i + 1) begin\n\
                     if (i < {n}) begin acc_in = v[3 * i]; h_in = v[3 * i + 1]; valid_in = 1; end else valid_in = 0;\n\
                     #1 clock = 1; #1 clock = 0;\n\
                     j = i - {lat} + 1;\n\
                     if (j >= 0 && (valid_out !== 1'b1 || word_out !== v[3 * j + 2][{o1}:0])) begin\n\
                       errors = errors + 1;\n\
                       if (errors < 10) $display(\"acc %h h %h: %b %h, want %h\", v[3 * j], v[3 * j + 1], valid_out, word_out, v[3 * j + 2][{o1}:0]);\n\
                     end\n\
                   end\n\
                   #1 clock = 1; #1 clock = 0;\n\
                   if (valid_out !== 1'b0) errors = errors + 1;\n\
                   $display(\"HSCALER checked=%0d errors=%0d\", {n}, errors);\n\
                   $finish;\n\
                 end\n\
                 endmodule\n",
                a1 = acc_bits - 1,
                h1 = h_bits - 1,
                o1 = o - 1,
                last = 3 * pairs.len() - 1,
                n = pairs.len(),
                lat = onebit_hdl::timing::H_STAGES,
            );
            // One value per line for $readmemh.
            std::fs::write(dir.join("vectors.hex"), vectors.split_whitespace().collect::<Vec<_>>().join("\n")).unwrap();
            std::fs::write(dir.join("hs.v"), module).unwrap();
            std::fs::write(dir.join("tb.v"), tb).unwrap();
            let log = run_tb_in_icarus(name, &dir, &sources);
            assert!(
                log.contains(&format!("HSCALER checked={} errors=0", pairs.len())),
                "{name} ({form} form): the h scaler's Verilog differs from scale_output:\n{log}"
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    assert!(exact_hits > 0, "no configuration reaches a saturation threshold exactly");
}

/// The g-scaler bank's Verilog (one loop over the rows; its iCE40 and ECP5
/// forms) against `lane_value` in Icarus: per configuration, every row gets
/// its own g in each bank, then a token every cycle selects a bank; each
/// row's lane is checked LANE_LATENCY cycles later, with the extreme
/// activations and g values (saturation on the narrow-lane configurations)
/// and random ones.
#[test]
fn gscaler_bank_verilog_matches_lane_value_on_every_row_and_bank() {
    use onebit_core::numerics::lane_value;
    use onebit_core::ArrayConfig;
    let configs = [
        ("sim16", ArrayConfig::SIM16),
        ("ice40", ArrayConfig::ICE40),
        ("ice40_up5k", ArrayConfig::ICE40_UP5K),
        ("ecp5", ArrayConfig::ECP5),
        ("t6x4", ArrayConfig::T6X4),
        ("t4x3", crate::common::T4X3),
    ];
    for (name, cfg) in configs {
        let (r, a, g, l, nb, s) = (cfg.rows, cfg.act_bits as usize, cfg.g_bits as usize, cfg.lane_bits as usize, cfg.weight_banks, cfg.scale_beat_bits());
        let (shift, m) = (cfg.lane_shift() as usize, ArrayConfig::sym_max(cfg.lane_bits));
        let (x_min, x_max) = (-(1i64 << (a - 1)), (1i64 << (a - 1)) - 1);
        let (g_min, g_max) = (-(1i64 << (g - 1)), (1i64 << (g - 1)) - 1);
        let mut rng = onebit_core::synth::SplitMix64(11);
        let mut pick = |lo: i64, hi: i64, corners: &[i64]| {
            let k = rng.next_u64();
            if k % 3 == 0 {
                corners[(k / 3) as usize % corners.len()]
            } else {
                lo + ((k / 3) % (hi - lo + 1) as u64) as i64
            }
        };
        // Per bank, one g per row; then tokens: (bank, one x per row).
        let gs: Vec<Vec<i64>> = (0..nb).map(|_| (0..r).map(|_| pick(g_min, g_max, &[g_min, g_max, 0, 1, -1])).collect()).collect();
        let tokens: Vec<(usize, Vec<i64>)> =
            (0..200).map(|t| (t % nb, (0..r).map(|_| pick(x_min, x_max, &[x_min, x_max, 0, 1, -1])).collect())).collect();
        let pack = |vals: &[i64], w: usize, bits: usize| {
            let mut words = vec![0u32; bits.div_ceil(32)];
            for (i, &v) in vals.iter().enumerate() {
                onebit_core::wire::put_field(&mut words, i * w, w as u32, v);
            }
            words.iter().rev().map(|w| format!("{w:08x}")).collect::<String>()
        };
        let (xw, lw) = (r * a, r * l);
        let mut lines = vec![];
        for bank in &gs {
            lines.push(pack(bank, g, s));
        }
        for (b, xs) in &tokens {
            lines.push(format!("{:x}", 1u32 << b));
            lines.push(pack(xs, a, xw));
            let want: Vec<i64> = xs.iter().enumerate().map(|(row, &x)| lane_value(&cfg, x, gs[*b][row])).collect();
            lines.push(pack(&want, l, lw));
        }
        // The generic form, the iCE40 form (rows in pairs in SB_MAC16s,
        // simulated on yosys's model of the cell) that the iCE40 synthesis
        // reads where `ONEBIT_ICE40_DSP` is defined, and the ECP5 form (a
        // registered MULT18X18D per row, on the project's model) for
        // `ONEBIT_ECP5_DSP`.
        let forms: &[&str] = if a <= 8 && g <= 8 { &["generic", "ice40_dsp", "ecp5_dsp"] } else { &["generic", "ecp5_dsp"] };
        for &form in forms {
            let dir = std::env::temp_dir().join(format!("onebit-gbank-{}-{name}-{form}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut body = onebit_hdl::gscaler::gscaler_bank_verilog(r, a, g, l, nb, s, shift, m);
            let mut sources: Vec<std::ffi::OsString> = vec!["tb.v".into(), "gb.v".into()];
            if form == "ice40_dsp" {
                body = format!("`define ONEBIT_ICE40_DSP\n`define NO_ICE40_DEFAULT_ASSIGNMENTS\n{body}");
                let cells = onebit_hdl::verilog::cell_models(onebit_hdl::verilog::Family::Ice40, &dir).unwrap();
                sources.extend(cells.files.iter().map(|f| f.clone().into_os_string()));
                let dsp = onebit_hdl::gscaler::gscaler_bank_ice40_dsp(r, a, g, l, nb, s, shift, m);
                assert_eq!(dsp.matches("SB_MAC16 ").count(), r.div_ceil(2), "{name}: two rows per SB_MAC16");
            }
            if form == "ecp5_dsp" {
                body = format!("`define ONEBIT_ECP5_DSP\n{body}");
                std::fs::write(dir.join("MULT18X18D_sim.v"), onebit_hdl::verilog::ECP5_MULT18X18D_SIM).unwrap();
                sources.push("MULT18X18D_sim.v".into());
                let dsp = onebit_hdl::gscaler::gscaler_bank_ecp5_dsp(r, a, g, l, nb, s, shift, m);
                assert_eq!(dsp.matches("MULT18X18D #").count(), r, "{name}: a MULT18X18D per row");
            }
            let module = format!(
                "module gb(input clock, input [{}:0] x_in, input [{}:0] g_in, input [{}:0] g_wr, input [{}:0] sel, output [{}:0] lane_out);\n{body}endmodule\n",
                xw - 1,
                s - 1,
                nb - 1,
                nb - 1,
                lw - 1
            );
            // A token every cycle; each one's lanes are checked
            // LANE_LATENCY edges later.
            let tb = format!(
                "module tb;\n\
                 reg clock = 0; reg [{x1}:0] x_in = 0; reg [{s1}:0] g_in = 0; reg [{n1}:0] g_wr = 0, sel = 0; wire [{l1}:0] lane_out;\n\
                 reg [{wide}:0] v [0:{last}];\n\
                 integer i, j, errors;\n\
                 gb dut(.clock(clock), .x_in(x_in), .g_in(g_in), .g_wr(g_wr), .sel(sel), .lane_out(lane_out));\n\
                 initial begin\n\
                   $readmemh(\"vectors.hex\", v); errors = 0;\n\
                   for (i = 0; i < {nb}; i = i + 1) begin\n\
                     g_in = v[i]; g_wr = 1 << i; #1 clock = 1; #1 clock = 0;\n\
                   end\n\
                   g_wr = 0;\n\
                   for (i = 0; i < {n} + {lat}; i = i + 1) begin\n\
                     if (i < {n}) begin sel = v[{nb} + 3 * i]; x_in = v[{nb} + 3 * i + 1]; end\n\
                     #1 clock = 1; #1 clock = 0;\n\
                     j = i - {lat} + 1;\n\
                     if (j >= 0 && j < {n} && lane_out !== v[{nb} + 3 * j + 2][{l1}:0]) begin\n\
                       errors = errors + 1;\n\
                       if (errors < 10) $display(\"token %0d: %h, want %h\", j, lane_out, v[{nb} + 3 * j + 2][{l1}:0]);\n\
                     end\n\
                   end\n\
                   $display(\"GBANK checked=%0d errors=%0d\", {n}, errors);\n\
                   $finish;\n\
                 end\n\
                 endmodule\n",
                x1 = xw - 1,
                s1 = s - 1,
                n1 = nb - 1,
                l1 = lw - 1,
                wide = 32 * s.max(xw).max(lw).div_ceil(32) - 1,
                last = lines.len() - 1,
                n = tokens.len(),
                lat = onebit_hdl::timing::LANE_LATENCY,
            );
            std::fs::write(dir.join("vectors.hex"), lines.join("\n")).unwrap();
            std::fs::write(dir.join("gb.v"), module).unwrap();
            std::fs::write(dir.join("tb.v"), tb).unwrap();
            let log = run_tb_in_icarus(name, &dir, &sources);
            assert!(
                log.contains(&format!("GBANK checked={} errors=0", tokens.len())),
                "{name} ({form} form): the g-scaler bank's Verilog differs from lane_value:\n{log}"
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// One accumulator-bank stimulus cycle: maybe a token's tags (first, ACC,
/// bank) with its partial sums (column c's in `psums[c]`, applied TAG_LEAD
/// cycles later), maybe a drain read (bank, address).
#[derive(Clone, Copy)]
struct AccCycle {
    token: Option<(bool, bool, bool)>,
    psums: [i64; 2],
    read: Option<(bool, usize)>,
}

/// Runs `cycles` on the accumulator bank's Verilog (2 columns, P 10, ACC
/// 20, 8 words), in the generic form or the ECP5 form (DP16KD on the
/// project's model), in Icarus; returns every drain read's (address, column
/// words).
fn run_acc_bank_in_icarus(name: &str, ecp5: bool, cycles: &[AccCycle]) -> Vec<(usize, [i64; 2])> {
    use onebit_hdl::timing::{ACC_READ_LATENCY, TAG_LEAD};
    let (c, p, acc, ad) = (2usize, 10usize, 20usize, 3usize);
    let dir = std::env::temp_dir().join(format!("onebit-accbank-{}-{name}-{}", std::process::id(), if ecp5 { "ecp5" } else { "generic" }));
    std::fs::create_dir_all(&dir).unwrap();
    let mut body = onebit_hdl::accumulator::accumulator_bank_verilog(c, p, acc, ad);
    let mut sources: Vec<std::ffi::OsString> = vec!["tb.v".into(), "ab.v".into()];
    if ecp5 {
        body = format!("`define ONEBIT_ECP5_BRAM\n{body}");
        std::fs::write(dir.join("DP16KD_sim.v"), onebit_hdl::verilog::ECP5_DP16KD_SIM).unwrap();
        sources.push("DP16KD_sim.v".into());
    }
    let module = format!(
        "module ab(input clock, input reset, input [{}:0] psum_in, input valid_in, input first_in, input acc_in, input bank_in,\n\
         input drain_rd, input drain_bank, input [{}:0] drain_addr, output [{}:0] acc_out);\n{body}endmodule\n",
        c * p - 1,
        ad - 1,
        c * acc - 1
    );
    // Per cycle: [3] valid [2] first [1] acc [0] bank, [23:4] the psums due
    // this cycle (TAG_LEAD after their tags), [24] drain_rd [25] bank [28:26] address.
    let mask = |v: i64, w: usize| (v as u64) & ((1 << w) - 1);
    let mut lines = vec![];
    for (i, cy) in cycles.iter().enumerate() {
        let (v, f, a, b) = cy.token.map_or((0, 0, 0, 0), |(f, a, b)| (1, f as u64, a as u64, b as u64));
        let ps = if i >= TAG_LEAD { cycles[i - TAG_LEAD].psums } else { [0, 0] };
        let psw = mask(ps[0], p) | (mask(ps[1], p) << p);
        let (dr, db, da) = cy.read.map_or((0, 0, 0), |(b, a)| (1u64, b as u64, a as u64));
        lines.push(format!("{:08x}", (v << 3) | (f << 2) | (a << 1) | b | (psw << 4) | (dr << 24) | (db << 25) | (da << 26)));
    }
    let tb = format!(
        "module tb;\n\
         reg clock = 0; reg [31:0] v [0:{last}]; integer i;\n\
         wire [{cw}:0] acc_out;\n\
         ab dut(.clock(clock), .reset(1'b0), .psum_in(v[i][23:4]), .valid_in(v[i][3]), .first_in(v[i][2]), .acc_in(v[i][1]), .bank_in(v[i][0]),\n\
                .drain_rd(v[i][24]), .drain_bank(v[i][25]), .drain_addr(v[i][28:26]), .acc_out(acc_out));\n\
         initial begin\n\
           $readmemh(\"stim.hex\", v);\n\
           for (i = 0; i < {n}; i = i + 1) begin\n\
             #1 $display(\"OUT %0d %h\", i, acc_out);\n\
             #1 clock = 1; #1 clock = 0;\n\
           end\n\
           $finish;\n\
         end\n\
         endmodule\n",
        last = cycles.len() - 1,
        n = cycles.len(),
        cw = c * acc - 1
    );
    std::fs::write(dir.join("stim.hex"), lines.join("\n")).unwrap();
    std::fs::write(dir.join("ab.v"), module).unwrap();
    std::fs::write(dir.join("tb.v"), tb).unwrap();
    let log = run_tb_in_icarus(name, &dir, &sources);
    let outs: Vec<u64> = log
        .lines()
        .filter_map(|l| l.strip_prefix("OUT "))
        .map(|l| u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap_or(u64::MAX))
        .collect();
    assert_eq!(outs.len(), cycles.len(), "{name}: the testbench printed every cycle:\n{log}");
    let sext = |v: u64| ((v << 44) as i64) >> 44;
    let mut drained = vec![];
    for (i, cy) in cycles.iter().enumerate() {
        if let Some((_, addr)) = cy.read {
            let o = outs[i + ACC_READ_LATENCY];
            drained.push((addr, [sext(o & 0xfffff), sext(o >> 20)]));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    drained
}

/// The accumulator bank's generic and ECP5 forms against a model of the
/// accumulation, in Icarus: runs of one to five tokens into one bank across
/// four K tiles, with random bubbles and each tile's first token as close
/// to the previous tile as the controller lets it come (ACC_SPACING), while
/// the other bank is read every cycle; then both banks drained. And the
/// ECP5 form's spacing is exact: two one-token tiles for the same word
/// ACC_SPACING apart add up in both forms; one cycle closer, the ECP5 form
/// (whose RAMs take a read an edge earlier) misses the first write, the
/// generic form (which needs ACC_SPACING_GENERIC) still adds.
#[test]
fn accumulator_bank_forms_accumulate_and_the_ecp5_spacing_is_exact() {
    use onebit_hdl::timing::{ACC_SPACING, ACC_SPACING_GENERIC};
    let mut rng = onebit_core::synth::SplitMix64(3);
    let idle = AccCycle { token: None, psums: [0, 0], read: None };
    for m in 1..=5usize {
        let mut cycles = vec![];
        // Bank 1 holds known words; bank 0 accumulates four tiles.
        let other: Vec<[i64; 2]> = (0..m).map(|t| [t as i64 * 7 - 20, 100 - t as i64]).collect();
        for (t, w) in other.iter().enumerate() {
            cycles.push(AccCycle { token: Some((t == 0, false, true)), psums: *w, read: None });
        }
        cycles.extend(std::iter::repeat_n(idle, 8));
        let mut model = vec![[0i64; 2]; m];
        let mut read = 0;
        for tile in 0..4 {
            let mut t = 0;
            while t < m {
                let bubble = rng.next_u64() % 4 == 0;
                let ps = [rng.range_i64(-511, 511), rng.range_i64(-511, 511)];
                let token = (!bubble).then_some((t == 0, tile > 0, false));
                if !bubble {
                    for col in 0..2 {
                        model[t][col] = if tile > 0 { model[t][col] + ps[col] } else { ps[col] };
                    }
                    t += 1;
                }
                cycles.push(AccCycle { token, psums: ps, read: Some((true, read % m)) });
                read += 1;
            }
            for _ in 0..ACC_SPACING.saturating_sub(m) {
                cycles.push(AccCycle { read: Some((true, read % m)), ..idle });
                read += 1;
            }
        }
        cycles.extend(std::iter::repeat_n(idle, 8));
        for t in 0..m {
            cycles.push(AccCycle { read: Some((false, t)), ..idle });
        }
        cycles.extend(std::iter::repeat_n(idle, 8));
        for ecp5 in [false, true] {
            let drained = run_acc_bank_in_icarus(&format!("m{m}"), ecp5, &cycles);
            let (others, mine) = drained.split_at(read);
            for &(addr, w) in others {
                assert_eq!(w, other[addr], "m {m}, ecp5 {ecp5}: the other bank's word {addr}");
            }
            assert_eq!(mine.len(), m);
            for &(addr, w) in mine {
                assert_eq!(w, model[addr], "m {m}, ecp5 {ecp5}: token {addr}");
            }
        }
    }
    // Two one-token tiles for word 0 of bank 0 (which starts at 5).
    let pair = |gap: usize| {
        let mut cycles = vec![AccCycle { token: Some((true, false, false)), psums: [5, 5], read: None }];
        cycles.extend(std::iter::repeat_n(idle, 8));
        cycles.push(AccCycle { token: Some((true, false, false)), psums: [30, 30], read: None });
        cycles.extend(std::iter::repeat_n(idle, gap - 1));
        cycles.push(AccCycle { token: Some((true, true, false)), psums: [12, 12], read: None });
        cycles.extend(std::iter::repeat_n(idle, 8));
        cycles.push(AccCycle { read: Some((false, 0)), ..idle });
        cycles.extend(std::iter::repeat_n(idle, 8));
        cycles
    };
    assert_eq!(ACC_SPACING, ACC_SPACING_GENERIC + 1);
    for (gap, ecp5, want) in [(ACC_SPACING, true, 42), (ACC_SPACING, false, 42), (ACC_SPACING - 1, false, 42), (ACC_SPACING - 1, true, 17)] {
        let got = run_acc_bank_in_icarus(&format!("pair{gap}"), ecp5, &pair(gap));
        assert_eq!(got, vec![(0, [want, want])], "one-token tiles {gap} cycles apart, ecp5 {ecp5}");
    }
}
