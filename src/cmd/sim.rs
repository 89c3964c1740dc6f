//! `onebit sim` (lands with issue #4).
pub use super::reserved::ReservedArgs as SimArgs;
pub fn run(a: SimArgs) -> anyhow::Result<()> {
    super::reserved::run("sim", "the Verilator co-simulation lands with issue #4; use `make sim`", a)
}
