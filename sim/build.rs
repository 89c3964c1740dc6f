//! Generates the accelerator's Verilog for each preset in `ONEBIT_SIM_PRESETS`
//! (default `sim16,ice40,t6x4`) from the hdl crate, verilates it (only when the
//! Verilog or the flags changed), and links the models into this crate through
//! a small C++ shim with an `extern "C"` API (see src/ffi.rs).
//!
//! `ONEBIT_X_INITIAL=unique` builds with `--x-initial unique` (registers start
//! from values chosen at run time) instead of the speed flag `fast`.

use std::path::{Path, PathBuf};
use std::process::Command;

const DEFAULT_PRESETS: &str = "sim16,ice40,t6x4";
/// Presets that also get a model with tracing built in (ONEBIT_SIM_TRACED).
const DEFAULT_TRACED: &str = "sim16";

fn verilog_for(preset: &str) -> String {
    use onebit_hdl::presets;
    let result = match preset {
        "sim16" => presets::sim16::build().map_err(|e| e.to_string()).and_then(|a| onebit_hdl::verilog::generate(&a).map_err(|e| e.to_string())),
        "ice40" => presets::ice40::build().map_err(|e| e.to_string()).and_then(|a| onebit_hdl::verilog::generate(&a).map_err(|e| e.to_string())),
        "ecp5" => presets::ecp5::build().map_err(|e| e.to_string()).and_then(|a| onebit_hdl::verilog::generate(&a).map_err(|e| e.to_string())),
        "t6x4" => presets::t6x4::build().map_err(|e| e.to_string()).and_then(|a| onebit_hdl::verilog::generate(&a).map_err(|e| e.to_string())),
        other => Err(format!("unknown preset `{other}` in ONEBIT_SIM_PRESETS (known: sim16, ice40, ecp5, t6x4)")),
    };
    result.unwrap_or_else(|e| panic!("generating Verilog for {preset}: {e}"))
}

/// FNV-1a: stable across toolchains, enough to notice a change.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for p in parts {
        for &b in *p {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {:?}: {e} (run `make deps`)", cmd.get_program()));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn verilator_root() -> PathBuf {
    let out = Command::new("verilator")
        .arg("--getenv")
        .arg("VERILATOR_ROOT")
        .output()
        .unwrap_or_else(|e| panic!("verilator is not installed ({e}): run `make deps`"));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/shim.cpp");
    println!("cargo:rerun-if-env-changed=ONEBIT_SIM_PRESETS");
    println!("cargo:rerun-if-env-changed=ONEBIT_X_INITIAL");
    println!("cargo:rerun-if-env-changed=ONEBIT_SIM_TRACED");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let presets: Vec<String> = std::env::var("ONEBIT_SIM_PRESETS")
        .unwrap_or_else(|_| DEFAULT_PRESETS.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let x_initial = std::env::var("ONEBIT_X_INITIAL").unwrap_or_else(|_| "fast".into());
    assert!(["fast", "unique", "0"].contains(&x_initial.as_str()), "ONEBIT_X_INITIAL must be fast, unique or 0");
    let root = verilator_root();
    let include = root.join("include");
    let version = Command::new("verilator").arg("--version").output().map(|o| o.stdout).unwrap_or_default();

    let mut shim = cc::Build::new();
    shim.cpp(true).std("c++17").warnings(false).opt_level(2);
    shim.include(&include).include(include.join("vltstd"));
    shim.define("VM_TRACE", "1").define("VM_TRACE_VCD", "1").define("VM_COVERAGE", "0").define("VM_SC", "0");
    let traced: Vec<String> = std::env::var("ONEBIT_SIM_TRACED")
        .unwrap_or_else(|_| DEFAULT_TRACED.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| presets.contains(s))
        .collect();
    let mut models = String::new();
    let mut classes = vec![];
    for p in &presets {
        let dir = out_dir.join(p);
        let verilog = verilog_for(p);
        let vfile = dir.join("onebit_accelerator.v");
        std::fs::create_dir_all(&dir).unwrap();
        // The fast model, and (for presets in ONEBIT_SIM_TRACED) a second one
        // with tracing built in: `--trace` slows a model even when no trace
        // is written.
        for trace in [false, true] {
            if trace && !traced.contains(p) {
                continue;
            }
            let class = if trace { format!("V{p}_trace") } else { format!("V{p}") };
            let mdir = dir.join(if trace { "obj_trace" } else { "obj" });
            std::fs::create_dir_all(&mdir).unwrap();
            let mut flags = vec![
                "--cc", "--build", "-O3", "--x-assign", "fast", "--x-initial", x_initial.as_str(), "-Wno-fatal",
                // verilated.mk compiles the model at -Os unless told otherwise.
                "-MAKEFLAGS", "OPT_FAST=-O2 OPT_SLOW=-O1",
                // Keep the hand-written loops (the PE grid in hdl/src/array.rs)
                // as C++ loops: unrolled, the sim16 grid alone is ~40 KB of
                // straight-line code per cycle, more than the L1 i-cache.
                "--unroll-count", "1",
                "--top-module", "top", "--prefix", class.as_str(), "-j", "2",
            ];
            if trace {
                flags.push("--trace");
            }
            let hash = fnv1a(&[verilog.as_bytes(), flags.join(" ").as_bytes(), &version]);
            let stamp = mdir.join("stamp");
            let archive = mdir.join(format!("{class}__ALL.a"));
            let fresh = std::fs::read_to_string(&stamp).ok().as_deref() == Some(&format!("{hash:016x}")) && archive.exists();
            if !fresh {
                if std::fs::read_to_string(&vfile).ok().as_deref() != Some(verilog.as_str()) {
                    std::fs::write(&vfile, &verilog).unwrap();
                }
                let _ = std::fs::remove_file(&stamp);
                run(Command::new("verilator").args(&flags).arg("-Mdir").arg(&mdir).arg(&vfile), &format!("verilating {p}"));
                std::fs::write(&stamp, format!("{hash:016x}")).unwrap();
            }
            shim.include(&mdir);
            // Verilator 5 detects a rising edge against the clock it saw at
            // the previous eval() (`__Vtrigrprev__TOP__clock`, a public member
            // of the model's root). Where the header has it, the shim lowers
            // it before a rising edge, so one eval per cycle sees the edge
            // and the falling edge needs no eval of its own (src/shim.cpp);
            // any other Verilator keeps the two-eval clock.
            let root = std::fs::read_to_string(mdir.join(format!("{class}___024root.h"))).unwrap_or_default();
            let fast_edge = root.contains("__Vtrigrprev__TOP__clock;");
            models.push_str(&format!("MODEL({p}, {class}, {}, {})\n", trace as u8, fast_edge as u8));
            println!("cargo:rustc-link-search=native={}", mdir.display());
            classes.push(class);
        }
    }
    // Expose what was built to the Rust side (`onebit_sim::BUILT_PRESETS`).
    std::fs::write(out_dir.join("built_presets.rs"), format!(
        "pub const BUILT_PRESETS: &[&str] = &{presets:?};\n/// Presets with a traced model too.\npub const TRACED_PRESETS: &[&str] = &{traced:?};\npub const X_INITIAL: &str = {x_initial:?};\n/// The Verilog each built preset was verilated from.\npub const VERILOG_FILES: &[(&str, &str)] = &[{}];\n",
        presets.iter().map(|p| format!("({p:?}, {:?})", out_dir.join(p).join("onebit_accelerator.v").display().to_string())).collect::<Vec<_>>().join(", ")
    )).unwrap();
    let includes: String = classes.iter().map(|c| format!("#include \"{c}.h\"\n#include \"{c}___024root.h\"\n")).collect();
    std::fs::write(out_dir.join("models.inc"), format!("{includes}#define ONEBIT_MODELS \\\n{}\n", models.lines().collect::<Vec<_>>().join(" \\\n"))).unwrap();
    shim.include(&out_dir).file(Path::new("src/shim.cpp")).compile("onebit_verilator_shim");
    for c in &classes {
        println!("cargo:rustc-link-lib=static:+verbatim={c}__ALL.a");
    }
    // Verilator's runtime after the models, which call into it.
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .warnings(false)
        .opt_level(2)
        .include(&include)
        .include(include.join("vltstd"))
        .define("VM_TRACE", "1")
        .define("VM_TRACE_VCD", "1")
        .define("VM_COVERAGE", "0")
        .define("VM_SC", "0")
        .file(include.join("verilated.cpp"))
        .file(include.join("verilated_threads.cpp"))
        .file(include.join("verilated_vcd_c.cpp"))
        .compile("onebit_verilated_runtime");
    println!("cargo:rustc-link-lib=dylib=stdc++");
    println!("cargo:rustc-link-lib=dylib=pthread");
}
