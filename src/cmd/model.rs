//! `onebit logits` and `onebit ppl` (land with issue #5).
pub use super::reserved::ReservedArgs as LogitsArgs;
pub use super::reserved::ReservedArgs as PplArgs;
pub fn logits(a: LogitsArgs) -> anyhow::Result<()> {
    super::reserved::run("logits", "the decoder model lands with issue #5", a)
}
pub fn ppl(a: PplArgs) -> anyhow::Result<()> {
    super::reserved::run("ppl", "the decoder model lands with issue #5", a)
}
