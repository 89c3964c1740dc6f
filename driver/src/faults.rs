//! Fault injection for the driver's tests: [`FaultyPorts`] wraps any device
//! with pins and breaks it in one chosen way, as a bad link or a broken
//! board would, so tests can show that each failure becomes a clear error
//! (never a hang or a panic) and that the device works again after a reset.

use onebit_core::ports::DevicePorts;

/// One way to break a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortFault {
    /// From this cycle on every ready and valid reads low, until a reset
    /// (which mends it for good).
    Hang { at_cycle: u64 },
    /// This weight beat (counted from the host's side) is acknowledged to
    /// the host but never reaches the device.
    DropWeightBeat { index: usize },
    /// This weight beat reaches the device twice.
    DuplicateWeightBeat { index: usize },
    /// XOR `mask` into word `word` of this output beat.
    FlipOutput { index: usize, word: usize, mask: u32 },
    /// In this cycle the device shows an output beat of zeros that it never
    /// made (a glitch on the output stream).
    SpuriousOutput { at_cycle: u64 },
}

/// A device with pins, broken as `fault` says.
pub struct FaultyPorts<D> {
    pub inner: D,
    pub fault: PortFault,
    cycle: u64,
    hung: bool,
    mended: bool,
    w_valid: bool,
    w_data: Vec<u32>,
    w_taken: usize,
    /// A copy of a beat still to be sent to the device (duplication).
    repeat: Option<Vec<u32>>,
    o_taken: usize,
    o_ready: bool,
}

impl<D: DevicePorts> FaultyPorts<D> {
    pub fn new(inner: D, fault: PortFault) -> Self {
        FaultyPorts {
            inner,
            fault,
            cycle: 0,
            hung: false,
            mended: false,
            w_valid: false,
            w_data: vec![],
            w_taken: 0,
            repeat: None,
            o_taken: 0,
            o_ready: false,
        }
    }
    fn spurious_now(&self) -> bool {
        matches!(self.fault, PortFault::SpuriousOutput { at_cycle } if at_cycle == self.cycle)
    }
    fn dropping_now(&self) -> bool {
        matches!(self.fault, PortFault::DropWeightBeat { index } if index == self.w_taken)
    }
}

impl<D: DevicePorts> DevicePorts for FaultyPorts<D> {
    fn set_reset(&mut self, reset: bool) {
        if reset {
            self.mended |= self.hung;
            self.hung = false;
            self.repeat = None;
        }
        self.inner.set_reset(reset)
    }
    fn set_cmd(&mut self, valid: bool, data: u32) {
        self.inner.set_cmd(valid && !self.hung, data)
    }
    fn set_weight(&mut self, valid: bool, data: &[u32]) {
        self.w_valid = valid;
        self.w_data = data.to_vec();
        if let Some(copy) = &self.repeat {
            let copy = copy.clone();
            self.inner.set_weight(!self.hung, &copy);
        } else {
            self.inner.set_weight(valid && !self.hung && !self.dropping_now(), data);
        }
    }
    fn set_scale(&mut self, valid: bool, data: &[u32]) {
        self.inner.set_scale(valid && !self.hung, data)
    }
    fn set_activation(&mut self, valid: bool, data: &[u32]) {
        self.inner.set_activation(valid && !self.hung, data)
    }
    fn set_out_ready(&mut self, ready: bool) {
        self.o_ready = ready;
        self.inner.set_out_ready(ready && !self.hung && !self.spurious_now())
    }
    fn eval(&mut self) {
        self.inner.eval()
    }
    fn cmd_ready(&self) -> bool {
        !self.hung && self.inner.cmd_ready()
    }
    fn weight_ready(&self) -> bool {
        if self.hung || self.repeat.is_some() {
            false
        } else {
            self.dropping_now() || self.inner.weight_ready()
        }
    }
    fn scale_ready(&self) -> bool {
        !self.hung && self.inner.scale_ready()
    }
    fn activation_ready(&self) -> bool {
        !self.hung && self.inner.activation_ready()
    }
    fn out_valid(&self) -> bool {
        !self.hung && (self.spurious_now() || self.inner.out_valid())
    }
    fn out_data(&self) -> Vec<u32> {
        if self.spurious_now() {
            return vec![0; self.inner.out_data().len()];
        }
        let mut d = self.inner.out_data();
        if let PortFault::FlipOutput { index, word, mask } = self.fault {
            if index == self.o_taken {
                if let Some(w) = d.get_mut(word) {
                    *w ^= mask;
                }
            }
        }
        d
    }
    fn tick(&mut self) {
        // What moved in this cycle, as the host and the device saw it.
        if self.repeat.is_some() {
            if !self.hung && self.inner.weight_ready() {
                self.repeat = None;
            }
        } else if self.w_valid && self.weight_ready() {
            if matches!(self.fault, PortFault::DuplicateWeightBeat { index } if index == self.w_taken) {
                self.repeat = Some(self.w_data.clone());
            }
            self.w_taken += 1;
        }
        if self.o_ready && self.out_valid() && !self.spurious_now() {
            self.o_taken += 1;
        }
        self.inner.tick();
        self.cycle += 1;
        if !self.mended && matches!(self.fault, PortFault::Hang { at_cycle } if self.cycle >= at_cycle) {
            self.hung = true;
        }
    }
}
