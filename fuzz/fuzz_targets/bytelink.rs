//! The host side of the board's byte link (`onebit_driver::bytelink`) fed
//! whatever a board may send: a layer run over a serial port or a clocked
//! simulated board ends with the output or a driver error, never a panic
//! (input layout: `onebit_fuzz::link`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use onebit_driver::bytelink::{ByteLinkDevice, SerialLink};
use onebit_driver::{run_layer_checked, Deadline, DriverError};
use onebit_fuzz::link::{job, LinkJob, ScriptedPorts, ScriptedSerial};
use std::sync::OnceLock;

fn jobs() -> &'static Vec<LinkJob> {
    static JOBS: OnceLock<Vec<LinkJob>> = OnceLock::new();
    JOBS.get_or_init(|| (0..=255u8).map(job).collect())
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, device_bytes)) = data.split_first() else { return };
    let job = &jobs()[selector as usize];
    let result: Result<_, DriverError> = if selector & 1 == 0 {
        let link = ScriptedSerial { bytes: device_bytes, chunk: 1 + (selector as usize >> 5), written: 0 };
        let mut dev = SerialLink { link, config: job.config };
        run_layer_checked(&mut dev, &job.program, "fuzz", Deadline::IdleTime(std::time::Duration::from_secs(1)), &job.want)
    } else {
        let mut dev = ByteLinkDevice::new(ScriptedPorts::new(device_bytes), job.config);
        run_layer_checked(&mut dev, &job.program, "fuzz", Deadline::IdleCycles(64), &job.want)
    };
    match result {
        Ok(run) => assert_eq!(run.output, job.want),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
