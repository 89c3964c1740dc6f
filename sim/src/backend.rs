//! The `hardware` LinearBackend: every OneBit linear runs on the Verilated
//! accelerator through the host driver, and every integer output is checked
//! against the reference on the way (a mismatch is an error, not a number).

use crate::device::{DeviceOptions, VerilatorDevice};
use ndarray::{Array2, ArrayView2};
use onebit_core::backend::{BackendError, LinearBackend, PreparedLinear};
use onebit_core::reference::{dequantize_outputs, integer_forward, layer_norm_rows, quantize_activations};
use onebit_core::{ArrayConfig, PackedLayer, QuantizedLayer};
use onebit_driver::Program;
use std::sync::{Arc, Mutex};

/// Counts shared by every layer of one backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct HardwareStats {
    pub layer_calls: u64,
    pub cycles: u64,
    pub ideal_cycles: u64,
    pub outputs_checked: u64,
}

/// One Verilated accelerator shared by all layers (calls are serialised).
pub struct VerilatorBackend {
    config: ArrayConfig,
    eps: f64,
    device: Arc<Mutex<VerilatorDevice>>,
    stats: Arc<Mutex<HardwareStats>>,
}

impl VerilatorBackend {
    pub fn new(preset: &str, layer_norm_eps: f64) -> Result<Self, BackendError> {
        let device = VerilatorDevice::new(preset, &DeviceOptions::from_env()).map_err(|e| BackendError::new("hardware", e))?;
        Ok(VerilatorBackend {
            config: *device.config(),
            eps: layer_norm_eps,
            device: Arc::new(Mutex::new(device)),
            stats: Arc::new(Mutex::new(HardwareStats::default())),
        })
    }
    pub fn stats(&self) -> HardwareStats {
        *self.stats.lock().unwrap()
    }
}

struct HardwareLinear {
    config: ArrayConfig,
    eps: f64,
    layer: QuantizedLayer,
    device: Arc<Mutex<VerilatorDevice>>,
    stats: Arc<Mutex<HardwareStats>>,
}

impl LinearBackend for VerilatorBackend {
    fn name(&self) -> &str {
        "hardware"
    }
    fn prepare(&self, layer: &PackedLayer) -> Result<Box<dyn PreparedLinear>, BackendError> {
        let q = layer.quantize(&self.config).map_err(|e| BackendError::new("hardware", e))?;
        Ok(Box::new(HardwareLinear {
            config: self.config,
            eps: self.eps,
            layer: q,
            device: self.device.clone(),
            stats: self.stats.clone(),
        }))
    }
}

impl PreparedLinear for HardwareLinear {
    fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, BackendError> {
        let err = |e: String| BackendError::new("hardware", e);
        let cfg = &self.config;
        let q = quantize_activations(x, cfg.act_bits).map_err(|e| err(e.to_string()))?;
        let program = Program::compile(cfg, &self.layer, q.xq.view()).map_err(|e| err(e.to_string()))?;
        let limit = 10_000 + 20 * (program.ideal_cycles + program.output_slots.len() as u64 + program.weight_beats.len() as u64 + 64 * program.commands.len() as u64);
        let (out, stats) = {
            let mut dev = self.device.lock().map_err(|_| err("device lock poisoned".into()))?;
            onebit_driver::run(&mut *dev, &program, None, limit).map_err(|e| err(e.to_string()))?
        };
        let want = integer_forward(cfg, &self.layer, q.xq.view()).map_err(|e| err(e.to_string()))?;
        if let Some((i, (a, b))) = out.iter().zip(want.iter()).enumerate().find(|(_, (a, b))| a != b) {
            return Err(err(format!("output {i} of a {}x{} layer: hardware {a}, reference {b}", self.layer.in_features, self.layer.out_features)));
        }
        {
            let mut s = self.stats.lock().unwrap();
            s.layer_calls += 1;
            s.cycles += stats.cycles;
            s.ideal_cycles += stats.ideal_cycles;
            s.outputs_checked += out.len() as u64;
        }
        let mut y = dequantize_outputs(cfg, &self.layer, &out, &q.scales);
        layer_norm_rows(&mut y, self.eps);
        Ok(y)
    }
}
