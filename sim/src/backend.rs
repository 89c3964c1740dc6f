//! The `hardware` LinearBackend: every OneBit linear runs on the Verilated
//! accelerator through the host driver, and every integer output is checked
//! against the reference on the way (a mismatch is an error, not a number).

use crate::device::{DeviceOptions, VerilatorDevice};
use ndarray::{Array2, ArrayView2};
use onebit_core::backend::{BackendError, LinearBackend, PreparedLinear};
use onebit_core::reference::{dequantize_outputs, integer_forward, layer_norm_rows, quantize_activations};
use onebit_core::{ArrayConfig, PackedLayer, QuantizedLayer};
use onebit_driver::{run_layer_checked, Deadline, PortDevice, Program};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Counts shared by every layer of one backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct HardwareStats {
    pub layer_calls: u64,
    pub cycles: u64,
    /// Σ over layer calls of the binding bound (compute or weight stream).
    pub ideal_cycles: u64,
    pub outputs_checked: u64,
}

/// One Verilated accelerator shared by all layers (calls are serialised).
pub struct VerilatorBackend {
    config: ArrayConfig,
    eps: f64,
    device: Arc<Mutex<PortDevice<VerilatorDevice>>>,
    stats: Arc<Mutex<HardwareStats>>,
    prepared: AtomicUsize,
}

impl VerilatorBackend {
    pub fn new(preset: &str, layer_norm_eps: f64) -> Result<Self, BackendError> {
        let device = VerilatorDevice::new(preset, &DeviceOptions::from_env()).map_err(|e| BackendError::new("hardware", e))?;
        let config = *device.config();
        Ok(VerilatorBackend {
            config,
            eps: layer_norm_eps,
            device: Arc::new(Mutex::new(PortDevice::new(device, config))),
            stats: Arc::new(Mutex::new(HardwareStats::default())),
            prepared: AtomicUsize::new(0),
        })
    }
    pub fn stats(&self) -> HardwareStats {
        *self.stats.lock().unwrap()
    }
}

struct HardwareLinear {
    config: ArrayConfig,
    eps: f64,
    name: String,
    layer: QuantizedLayer,
    device: Arc<Mutex<PortDevice<VerilatorDevice>>>,
    stats: Arc<Mutex<HardwareStats>>,
}

impl LinearBackend for VerilatorBackend {
    fn name(&self) -> &str {
        "hardware"
    }
    fn prepare(&self, layer: &PackedLayer) -> Result<Box<dyn PreparedLinear>, BackendError> {
        let i = self.prepared.fetch_add(1, Ordering::Relaxed);
        self.prepare_named(&format!("#{i} ({}x{})", layer.in_features, layer.out_features), layer)
    }
    fn prepare_named(&self, name: &str, layer: &PackedLayer) -> Result<Box<dyn PreparedLinear>, BackendError> {
        let q = layer.quantize(&self.config).map_err(|e| BackendError::new("hardware", e))?;
        Ok(Box::new(HardwareLinear {
            config: self.config,
            eps: self.eps,
            name: name.to_string(),
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
        let want = integer_forward(cfg, &self.layer, q.xq.view()).map_err(|e| err(e.to_string()))?;
        let run = {
            let mut dev = self.device.lock().map_err(|_| err("device lock poisoned".into()))?;
            let result = run_layer_checked(&mut *dev, &program, &self.name, Deadline::for_config(cfg), &want);
            if result.is_err() {
                // Leave the shared device usable for the next layer.
                let _ = onebit_driver::Device::reset(&mut *dev);
            }
            result.map_err(|e| err(e.to_string()))?
        };
        let out = run.output;
        {
            let mut s = self.stats.lock().unwrap();
            s.layer_calls += 1;
            s.cycles += run.progress.cycles;
            s.ideal_cycles += program.binding_bound();
            s.outputs_checked += out.len() as u64;
        }
        let mut y = dequantize_outputs(cfg, &self.layer, &out, &q.scales);
        layer_norm_rows(&mut y, self.eps);
        Ok(y)
    }
}
