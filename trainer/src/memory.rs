//! Allocator tuning for candle on the CPU.
//!
//! candle allocates a fresh buffer for every op's output and for every
//! gradient. With glibc's defaults, buffers over the (dynamic) mmap threshold
//! are mapped and unmapped each time, so every step pays page faults and
//! kernel page zeroing for memory it just gave back: 14% of a KD step here
//! (perf: `exc_page_fault`, `clear_page_erms`). Raising the mmap and trim
//! thresholds keeps freed memory in the heap for reuse.
//!
//! glibc's `mallopt` is called directly (std links the C library on Linux),
//! like `interrupt.rs` does with `signal`; other targets are left alone.

/// Keep freed memory in the process for reuse instead of returning it to the
/// kernel. Idempotent; returns whether the allocator accepted the settings.
pub fn retain_freed_memory() -> bool {
    imp::retain()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    /// glibc's ceiling for M_MMAP_THRESHOLD on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX).
    const MMAP_THRESHOLD_MAX: i32 = 32 << 20;

    pub fn retain() -> bool {
        // SAFETY: mallopt only changes allocator parameters; both are valid values.
        unsafe { mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1 && mallopt(M_TRIM_THRESHOLD, i32::MAX) == 1 }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub fn retain() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_settings() {
        assert!(super::retain_freed_memory());
    }
}
