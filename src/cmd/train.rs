//! `onebit train-teacher`, `svid`, `distill`, `export` (land with issue #6).
pub use super::reserved::ReservedArgs as TrainTeacherArgs;
pub use super::reserved::ReservedArgs as SvidArgs;
pub use super::reserved::ReservedArgs as DistillArgs;
pub use super::reserved::ReservedArgs as ExportArgs;
const WHY: &str = "the trainer lands with issue #6";
pub fn train_teacher(a: TrainTeacherArgs) -> anyhow::Result<()> {
    super::reserved::run("train-teacher", WHY, a)
}
pub fn svid(a: SvidArgs) -> anyhow::Result<()> {
    super::reserved::run("svid", WHY, a)
}
pub fn distill(a: DistillArgs) -> anyhow::Result<()> {
    super::reserved::run("distill", WHY, a)
}
pub fn export(a: ExportArgs) -> anyhow::Result<()> {
    super::reserved::run("export", WHY, a)
}
