pub mod eval;
pub mod inspect;
pub mod model;
pub mod reserved;
pub mod sim;
pub mod train;

/// Print to stdout; a closed pipe (`onebit inspect M | head`) is not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}
