//! `flowc fmt [--check] JOB.flow…`: the canonical layout, comments kept.

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct FmtArgs {
    /// Only report files that are not formatted; exit 1 if any.
    #[arg(long)]
    pub check: bool,
    /// Print the formatted text instead of rewriting the file.
    #[arg(long)]
    pub stdout: bool,
    /// Job files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(a: FmtArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for path in &a.files {
        let src = match flowc_dsl::load(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
                continue;
            }
        };
        let parsed = flowc_dsl::parse(&src.text);
        if parsed.has_errors() {
            eprint!("{}", src.render_all(&parsed.diagnostics));
            failed = true;
            continue;
        }
        let formatted = flowc_dsl::format(&parsed.file, &src.text);
        if a.stdout {
            print!("{formatted}");
        } else if a.check {
            if formatted != src.text {
                println!("{}: not formatted", src.name);
                failed = true;
            }
        } else if formatted != src.text {
            std::fs::write(path, &formatted).with_context(|| format!("cannot write `{}`", path.display()))?;
            println!("{}: formatted", src.name);
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
