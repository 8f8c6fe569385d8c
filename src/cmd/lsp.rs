//! `flowc lsp`: the language server for editors, on stdin and stdout (see
//! the `flowc-lsp` crate). Logs go to stderr (`FLOWC_LOG=debug` shows the
//! time of each re-check).

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct LspArgs {
    /// Accepted for editors that pass it (VS Code's language client does);
    /// stdio is the only transport.
    #[arg(long)]
    pub stdio: bool,
}

pub fn run(_: LspArgs) -> anyhow::Result<ExitCode> {
    flowc_lsp::run_stdio()?;
    Ok(ExitCode::SUCCESS)
}
