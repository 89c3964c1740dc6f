//! Subcommand names reserved for work that has not landed yet: they exist,
//! have `--help`, and say plainly that they cannot run yet (non-zero exit).

#[derive(clap::Args, Debug)]
pub struct ReservedArgs {
    /// Arguments (accepted and ignored until the subcommand lands).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(name: &str, why: &str, _args: ReservedArgs) -> anyhow::Result<()> {
    anyhow::bail!("`onebit {name}` is not available in this build: {why}")
}
