//! The C API of src/shim.cpp (port numbers must match its enums).

use std::os::raw::{c_char, c_int, c_void};

pub const CLOCK: c_int = 0;
pub const CMD_DATA: c_int = 1;
pub const CMD_VALID: c_int = 2;
pub const W_DATA: c_int = 3;
pub const W_VALID: c_int = 4;
pub const S_DATA: c_int = 5;
pub const S_VALID: c_int = 6;
pub const X_DATA: c_int = 7;
pub const X_VALID: c_int = 8;
pub const O_READY: c_int = 9;
pub const RESET: c_int = 10;

pub const CMD_READY: c_int = 0;
pub const W_READY: c_int = 1;
pub const S_READY: c_int = 2;
pub const X_READY: c_int = 3;
pub const O_DATA: c_int = 4;
pub const O_VALID: c_int = 5;

extern "C" {
    pub fn onebit_sim_new(preset: *const c_char, tracing: c_int, seed: u32, x_random: c_int) -> *mut c_void;
    pub fn onebit_sim_free(m: *mut c_void);
    pub fn onebit_sim_set(m: *mut c_void, port: c_int, words: *const u32);
    pub fn onebit_sim_get(m: *mut c_void, port: c_int) -> u64;
    /// Copies up to `n` words of a port into `words`; returns the port's width in words.
    pub fn onebit_sim_get_words(m: *mut c_void, port: c_int, words: *mut u32, n: c_int) -> c_int;
    pub fn onebit_sim_eval(m: *mut c_void);
    /// A rising edge in one eval, leaving the clock at 0 (shim.cpp `rise`);
    /// returns 0, having done nothing, where the model cannot.
    pub fn onebit_sim_rise(m: *mut c_void) -> c_int;
    /// 1 when `onebit_sim_rise` works for this model.
    pub fn onebit_sim_fast_edge(m: *mut c_void) -> c_int;
    pub fn onebit_sim_trace_open(m: *mut c_void, path: *const c_char) -> c_int;
    pub fn onebit_sim_trace_dump(m: *mut c_void, time: u64);
}
