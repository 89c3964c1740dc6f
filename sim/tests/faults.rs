//! A device that misbehaves (hangs, loses or repeats a weight beat, flips
//! output bits, shows an output before its DRAIN) or is given beats of the
//! wrong width: every case is an error naming the layer, the step and the
//! phase (never a hang or a panic), and the device works again after a reset.
//! On Verilator (sim16) and on rust-hdl's simulator (t4x3).

use onebit_core::ports::DevicePorts;
use onebit_core::reference::integer_forward;
use onebit_core::ArrayConfig;
use onebit_driver::faults::{FaultyPorts, PortFault};
use onebit_driver::{run_layer, run_layer_checked, Deadline, Device, DriverError, PortDevice, Phase, Program};
use onebit_sim::suite::{make_layer, Fill};
use onebit_sim::{DeviceOptions, VerilatorDevice};

fn layer(cfg: &ArrayConfig, seed: u64) -> (Program, ndarray::Array2<i64>) {
    let mut rng = onebit_core::synth::SplitMix64(seed);
    let (k, n, m) = (3 * cfg.rows + 1, 2 * cfg.cols + 1, 3);
    let (layer, xq) = make_layer(cfg, &mut rng, k, n, m, Fill::Random, Fill::Random, Fill::Random, Fill::Random);
    (Program::compile(cfg, &layer, xq.view()).unwrap(), integer_forward(cfg, &layer, xq.view()).unwrap())
}

/// Every fault on a fresh device; `make` builds the device under test.
fn every_fault_is_an_error<D: DevicePorts>(cfg: ArrayConfig, make: impl Fn() -> D) {
    let (p, want) = layer(&cfg, 7);
    let deadline = Deadline::for_config(&cfg);
    let faulty = |fault| PortDevice::new(FaultyPorts::new(make(), fault), cfg);

    // Hangs mid-layer: stopped, with the step and phase it stopped in; a
    // reset mends it and the same layer then runs exactly.
    let mut dev = faulty(PortFault::Hang { at_cycle: 40 });
    match run_layer(&mut dev, &p, "blocks.0.q_proj", deadline) {
        Err(DriverError::Device { layer, step, fault, .. }) => {
            assert_eq!(layer, "blocks.0.q_proj");
            assert!(step.starts_with("tile") || step.starts_with("drain"), "{step}");
            assert!(fault.contains("stopped"), "{fault}");
        }
        other => panic!("hang: {other:?}"),
    }
    dev.reset().unwrap();
    assert_eq!(run_layer(&mut dev, &p, "again", deadline).unwrap().output, want, "after the reset");

    // A weight beat lost on the way: the device waits for it forever.
    let mut dev = faulty(PortFault::DropWeightBeat { index: cfg.beats_per_tile() + 1 });
    let e = run_layer(&mut dev, &p, "lost", deadline).unwrap_err();
    assert!(matches!(e, DriverError::Device { .. }), "lost beat: {e}");
    dev.reset().unwrap();
    assert_eq!(run_layer(&mut dev, &p, "again", deadline).unwrap().output, want, "after the lost beat");

    // A weight beat repeated: the device finishes a beat early and never
    // takes the host's last one, which names the last tile's LOAD_W.
    let mut dev = faulty(PortFault::DuplicateWeightBeat { index: 2 });
    match run_layer(&mut dev, &p, "repeated", deadline) {
        Err(DriverError::Device { phase: Phase::LoadW, step, .. }) => assert!(step.starts_with("tile"), "{step}"),
        other => panic!("repeated beat: {other:?}"),
    }
    dev.reset().unwrap();
    assert_eq!(run_layer(&mut dev, &p, "again", deadline).unwrap().output, want, "after the repeated beat");

    // Output bits flipped: the checked run names the output and its drain.
    let mut dev = faulty(PortFault::FlipOutput { index: 1, word: 0, mask: 1 << 3 });
    match run_layer_checked(&mut dev, &p, "flipped", deadline, &want) {
        Err(DriverError::Mismatch { layer, step, .. }) => {
            assert_eq!(layer, "flipped");
            assert!(step.starts_with("drain"), "{step}");
        }
        other => panic!("flipped bits: {other:?}"),
    }

    // An output beat before any DRAIN was sent.
    let mut dev = faulty(PortFault::SpuriousOutput { at_cycle: 1 });
    match run_layer(&mut dev, &p, "early", deadline) {
        Err(DriverError::Protocol { problem, .. }) => assert!(problem.contains("before its DRAIN"), "{problem}"),
        other => panic!("early output: {other:?}"),
    }

    // Activations of the wrong width are refused before anything is sent.
    let mut bad = p.clone();
    bad.activation_beats[1].push(0);
    let mut dev = PortDevice::new(make(), cfg);
    match run_layer(&mut dev, &bad, "wide", deadline) {
        Err(DriverError::Input { problem, .. }) => assert!(problem.contains("activation beat 1"), "{problem}"),
        other => panic!("wrong width: {other:?}"),
    }
    let mut bad = p.clone();
    let last = bad.activation_beats[0].len() - 1;
    bad.activation_beats[0][last] |= 1 << 31;
    if cfg.activation_beat_bits() % 32 != 0 {
        assert!(matches!(run_layer(&mut dev, &bad, "wide", deadline), Err(DriverError::Input { .. })));
    }
    // And the device was never disturbed: the good program runs.
    assert_eq!(run_layer(&mut dev, &p, "good", deadline).unwrap().output, want);
}

#[test]
fn faults_on_verilator_are_errors_and_reset_recovers() {
    every_fault_is_an_error(ArrayConfig::SIM16, || VerilatorDevice::new("sim16", &DeviceOptions::default()).unwrap());
}

#[test]
fn faults_on_rusthdl_are_errors_and_reset_recovers() {
    every_fault_is_an_error(onebit_hdl::presets::small::T4X3, || onebit_hdl::presets::small::t4x3::build().unwrap());
}

/// A reset in the middle of a layer (the device froze at cycle `cut`, the
/// driver gave up) leaves no trace: banks, drain marks and pointers start
/// afresh, whatever state the units were in.
#[test]
fn reset_mid_layer_then_exact() {
    let cfg = ArrayConfig::SIM16;
    let (p, want) = layer(&cfg, 9);
    for cut in [3u64, 17, 60, 150, 200] {
        let ports = FaultyPorts::new(VerilatorDevice::new("sim16", &DeviceOptions::default()).unwrap(), PortFault::Hang { at_cycle: cut });
        let mut dev = PortDevice::new(ports, cfg);
        assert!(run_layer(&mut dev, &p, "cut", Deadline::for_config(&cfg)).is_err(), "cut at {cut}");
        dev.reset().unwrap();
        assert_eq!(run_layer(&mut dev, &p, "after", Deadline::for_config(&cfg)).unwrap().output, want, "cut at {cut}");
    }
}
