//! The accelerator instantiated for every named preset of `ArrayConfig`.

crate::accelerator_for!(sim16, ArrayConfig::SIM16);
crate::accelerator_for!(ecp5, ArrayConfig::ECP5);
crate::accelerator_for!(ice40, ArrayConfig::ICE40);
