//! The accelerator's pins as a simulator exposes them, one clock: the
//! contract between the models that have pins (rust-hdl's simulator in
//! `hdl/`, Verilator in `sim/`) and the driver that clocks them
//! (`onebit_driver::device::PortDevice`).

/// The accelerator's ports (`top`, docs/hardware.md) seen from the host.
/// Wide beats are little-endian u32 words.
pub trait DevicePorts {
    fn set_reset(&mut self, reset: bool);
    fn set_cmd(&mut self, valid: bool, data: u32);
    fn set_weight(&mut self, valid: bool, data: &[u32]);
    fn set_scale(&mut self, valid: bool, data: &[u32]);
    fn set_activation(&mut self, valid: bool, data: &[u32]);
    fn set_out_ready(&mut self, ready: bool);
    /// Settle the combinational logic after inputs changed.
    fn eval(&mut self);
    fn cmd_ready(&self) -> bool;
    fn weight_ready(&self) -> bool;
    fn scale_ready(&self) -> bool;
    fn activation_ready(&self) -> bool;
    fn out_valid(&self) -> bool;
    /// The output beat (`out_beat_bits` significant), as u32 words.
    fn out_data(&self) -> Vec<u32>;
    /// One rising clock edge, then settle.
    fn tick(&mut self);
    /// True when every output (the four readies, `out_valid`, `out_data`)
    /// depends on the registers alone, so the values `tick()` settled still
    /// hold after the inputs change and the driver may read them without an
    /// `eval()` first (the next `tick()` evaluates the new inputs before
    /// its edge). The accelerator is built that way: each ready comes from
    /// the controller's state, the output beat from output registers.
    /// onebit-sim's `outputs_depend_on_registers_only` test checks the
    /// claim for its Verilated models, which skip an evaluation per cycle.
    fn outputs_registered(&self) -> bool {
        false
    }
}

/// A board's byte link (UART side of hdl's `ByteStreamBridge`) seen from the
/// host, one clock.
pub trait BytePorts {
    fn set_reset(&mut self, reset: bool);
    fn set_rx(&mut self, valid: bool, byte: u8);
    fn set_tx_ready(&mut self, ready: bool);
    /// Settle the combinational logic after inputs changed.
    fn eval(&mut self);
    fn rx_ready(&self) -> bool;
    fn tx_valid(&self) -> bool;
    fn tx_data(&self) -> u8;
    /// One rising clock edge, then settle.
    fn tick(&mut self);
}
