//! Ctrl-C handling: the first SIGINT sets a flag the training loops poll after
//! every step (they then save a checkpoint and stop); a second SIGINT falls
//! back to the default action and kills the process.
//!
//! This uses the C library's `signal` directly (linked by std on every unix
//! target) rather than a new dependency; the handler only stores to an atomic,
//! which is async-signal-safe.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C was pressed since [`install`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

#[cfg(unix)]
mod imp {
    use super::INTERRUPTED;
    use std::sync::atomic::Ordering;

    const SIGINT: i32 = 2;
    const SIG_DFL: usize = 0;

    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }

    extern "C" fn on_sigint(_: i32) {
        INTERRUPTED.store(true, Ordering::SeqCst);
        // A second Ctrl-C terminates at once.
        unsafe {
            signal(SIGINT, SIG_DFL);
        }
    }

    pub fn install() {
        let handler: extern "C" fn(i32) = on_sigint;
        unsafe {
            signal(SIGINT, handler as usize);
        }
    }
}

#[cfg(not(unix))]
mod imp {
    pub fn install() {}
}

/// Install the SIGINT handler (idempotent).
pub fn install() {
    INTERRUPTED.store(false, Ordering::SeqCst);
    imp::install();
}

/// Pretend Ctrl-C was pressed (tests, and `--stop-after` style limits).
pub fn request_stop() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}
