//! `VerilatorDevice`: the Verilated accelerator behind a safe Rust API that
//! implements the pins contract `onebit_core::ports::DevicePorts`, so the
//! driver clocks it (`onebit_driver::PortDevice`) exactly as it clocks
//! rust-hdl's simulator.

use crate::ffi;
use onebit_core::ports::DevicePorts;
use onebit_core::wire::words_for;
use onebit_core::ArrayConfig;
use std::ffi::CString;
use std::os::raw::c_void;
use std::path::{Path, PathBuf};

/// Problems creating or tracing a Verilated model.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("preset `{preset}` was not verilated into this build (built: {built:?}; set ONEBIT_SIM_PRESETS and rebuild)")]
    NotBuilt { preset: String, built: Vec<String> },
    #[error("unknown preset: {0}")]
    Config(#[from] onebit_core::ConfigError),
    #[error("preset `{preset}` has no traced model in this build (traced: {traced:?}; set ONEBIT_SIM_TRACED and rebuild)")]
    NotTraced { preset: String, traced: Vec<String> },
    #[error("cannot open VCD trace {}", .0.display())]
    Trace(PathBuf),
}

/// Options for a new model.
#[derive(Debug, Clone, Default)]
pub struct DeviceOptions {
    /// Write a VCD of every port and register here (uses the preset's traced
    /// model, built for the presets in ONEBIT_SIM_TRACED, default sim16).
    pub trace: Option<PathBuf>,
    /// Initial register values: `None` uses the build's x-initial setting
    /// (zeros for `fast`); `Some(seed)` randomises them (meaningful with a
    /// `ONEBIT_X_INITIAL=unique` build).
    pub random_init: Option<u32>,
}

impl DeviceOptions {
    /// Tracing from the environment: `ONEBIT_TRACE=out.vcd`.
    pub fn from_env() -> Self {
        DeviceOptions { trace: std::env::var_os("ONEBIT_TRACE").map(PathBuf::from), random_init: None }
    }
}

/// One Verilated accelerator.
pub struct VerilatorDevice {
    model: *mut c_void,
    config: ArrayConfig,
    preset: String,
    cycles: u64,
    time: u64,
    tracing: bool,
    /// The model takes a rising edge in one eval (shim.cpp `rise`).
    fast_edge: bool,
}

// The model is owned exclusively by this value; Verilator models may move
// between threads as long as only one uses them at a time.
unsafe impl Send for VerilatorDevice {}

impl VerilatorDevice {
    /// A model of a configuration this build verilated (a preset such as
    /// `sim16`, `ice40`, `ecp5`, or a test configuration, see
    /// `ArrayConfig::lookup`).
    pub fn new(preset: &str, options: &DeviceOptions) -> Result<Self, SimError> {
        let config = ArrayConfig::lookup(preset)?;
        if !crate::BUILT_PRESETS.contains(&preset) {
            return Err(SimError::NotBuilt { preset: preset.into(), built: crate::BUILT_PRESETS.iter().map(|s| s.to_string()).collect() });
        }
        if options.trace.is_some() && !crate::TRACED_PRESETS.contains(&preset) {
            return Err(SimError::NotTraced { preset: preset.into(), traced: crate::TRACED_PRESETS.iter().map(|s| s.to_string()).collect() });
        }
        let name = CString::new(preset).expect("preset names have no NUL");
        let (x_random, seed) = match options.random_init {
            Some(seed) => (2, seed),
            None => (0, 0),
        };
        // SAFETY: the name is a valid C string; the shim returns null for unknown presets.
        let model = unsafe { ffi::onebit_sim_new(name.as_ptr(), options.trace.is_some() as i32, seed, x_random) };
        if model.is_null() {
            return Err(SimError::NotBuilt { preset: preset.into(), built: vec![] });
        }
        // SAFETY: model is live.
        let fast_edge = unsafe { ffi::onebit_sim_fast_edge(model) } != 0;
        let mut dev = VerilatorDevice { model, config, preset: preset.into(), cycles: 0, time: 0, tracing: false, fast_edge };
        if let Some(path) = &options.trace {
            dev.open_trace(path)?;
        }
        dev.set_port(ffi::CLOCK, &[0]);
        dev.eval();
        Ok(dev)
    }

    fn open_trace(&mut self, path: &Path) -> Result<(), SimError> {
        let c = CString::new(path.to_string_lossy().as_bytes()).map_err(|_| SimError::Trace(path.into()))?;
        // SAFETY: model is live, c is a valid C string.
        if unsafe { ffi::onebit_sim_trace_open(self.model, c.as_ptr()) } != 0 {
            return Err(SimError::Trace(path.into()));
        }
        self.tracing = true;
        Ok(())
    }

    pub fn config(&self) -> &ArrayConfig {
        &self.config
    }
    pub fn preset(&self) -> &str {
        &self.preset
    }
    /// Rising clock edges so far.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// Words of an input port (the shim reads exactly this many).
    fn port_words(&self, port: i32) -> usize {
        let c = &self.config;
        match port {
            ffi::W_DATA => words_for(c.weight_beat_bits as usize),
            ffi::S_DATA => words_for(c.scale_beat_bits()),
            ffi::X_DATA => words_for(c.activation_beat_bits()),
            _ => 1,
        }
    }

    fn set_port(&mut self, port: i32, words: &[u32]) {
        let n = self.port_words(port);
        if words.len() >= n {
            // SAFETY: model is live; the shim reads `n` words and `words` holds at least that many.
            unsafe { ffi::onebit_sim_set(self.model, port, words.as_ptr()) }
        } else {
            let mut buf = vec![0u32; n];
            buf[..words.len()].copy_from_slice(words);
            // SAFETY: as above, with the words padded to the port's width.
            unsafe { ffi::onebit_sim_set(self.model, port, buf.as_ptr()) }
        }
    }
    fn get_port(&self, port: i32) -> u64 {
        // SAFETY: model is live.
        unsafe { ffi::onebit_sim_get(self.model, port) }
    }
    fn dump(&mut self) {
        if self.tracing {
            // SAFETY: model is live and has an open trace.
            unsafe { ffi::onebit_sim_trace_dump(self.model, self.time) }
        }
    }
}

impl DevicePorts for VerilatorDevice {
    fn set_reset(&mut self, reset: bool) {
        self.set_port(ffi::RESET, &[reset as u32]);
    }
    fn set_cmd(&mut self, valid: bool, data: u32) {
        self.set_port(ffi::CMD_VALID, &[valid as u32]);
        self.set_port(ffi::CMD_DATA, &[data]);
    }
    fn set_weight(&mut self, valid: bool, data: &[u32]) {
        self.set_port(ffi::W_VALID, &[valid as u32]);
        self.set_port(ffi::W_DATA, data);
    }
    fn set_scale(&mut self, valid: bool, data: &[u32]) {
        self.set_port(ffi::S_VALID, &[valid as u32]);
        self.set_port(ffi::S_DATA, data);
    }
    fn set_activation(&mut self, valid: bool, data: &[u32]) {
        self.set_port(ffi::X_VALID, &[valid as u32]);
        self.set_port(ffi::X_DATA, data);
    }
    fn set_out_ready(&mut self, ready: bool) {
        self.set_port(ffi::O_READY, &[ready as u32]);
    }
    fn eval(&mut self) {
        // SAFETY: model is live.
        unsafe { ffi::onebit_sim_eval(self.model) }
    }
    fn cmd_ready(&self) -> bool {
        self.get_port(ffi::CMD_READY) & 1 == 1
    }
    fn weight_ready(&self) -> bool {
        self.get_port(ffi::W_READY) & 1 == 1
    }
    fn scale_ready(&self) -> bool {
        self.get_port(ffi::S_READY) & 1 == 1
    }
    fn activation_ready(&self) -> bool {
        self.get_port(ffi::X_READY) & 1 == 1
    }
    fn out_valid(&self) -> bool {
        self.get_port(ffi::O_VALID) & 1 == 1
    }
    fn out_data(&self) -> Vec<u32> {
        let mut w = vec![0u32; words_for(self.config.out_beat_bits())];
        // SAFETY: model is live; the shim writes at most w.len() words.
        unsafe { ffi::onebit_sim_get_words(self.model, ffi::O_DATA, w.as_mut_ptr(), w.len() as i32) };
        w
    }
    fn outputs_registered(&self) -> bool {
        // Checked by tests/equivalence.rs `outputs_depend_on_registers_only`.
        // A traced run settles every cycle, so the VCD shows settled logic.
        self.fast_edge && !self.tracing
    }
    fn tick(&mut self) {
        if self.fast_edge && !self.tracing {
            // One eval: the new inputs' logic, then the edge (shim.cpp `rise`).
            // SAFETY: model is live.
            unsafe { ffi::onebit_sim_rise(self.model) };
            self.time += 2;
            self.cycles += 1;
            return;
        }
        // Inputs were settled by eval(); dump them, then one full clock period.
        self.dump();
        self.time += 1;
        self.set_port(ffi::CLOCK, &[1]);
        self.eval();
        self.dump();
        self.time += 1;
        // The design only uses rising edges: the falling edge is evaluated
        // together with the next cycle's inputs (one eval per cycle saved);
        // when tracing, evaluate it so the VCD shows a clean clock.
        self.set_port(ffi::CLOCK, &[0]);
        if self.tracing {
            self.eval();
        }
        self.cycles += 1;
    }
}

impl Drop for VerilatorDevice {
    fn drop(&mut self) {
        // SAFETY: model came from onebit_sim_new and is freed exactly once (closes the trace).
        unsafe { ffi::onebit_sim_free(self.model) }
    }
}
