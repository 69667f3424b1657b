//! The `cao` binary: parse the command line, run the command, map errors to exit codes.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cao::cli::Cli::parse();
    // Only long-running commands (gateway, run, demo) get the background log writer; for the
    // rest its thread costs more than the command itself.
    let log_guard = if cli.command.logs_on_hot_path() {
        cao::logging::init()
    } else {
        cao::logging::init_direct();
        None
    };
    let code = match cao::commands::dispatch(cli) {
        Ok(code) => code,
        // A closed pipe (`cao status --json | head -c 5`) is the reader saying it has seen
        // enough: stop quietly with success, as ripgrep does.
        Err(err) if is_broken_pipe(&err) => 0,
        Err(err) => {
            report_error(&err);
            1
        }
    };
    drop(log_guard); // flush pending log lines before exit
    ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}

/// Whether the error comes from writing to a pipe whose reader has gone away.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Print an error chain the way uv does: `error: ...` then `  Caused by: ...`.
fn report_error(err: &anyhow::Error) {
    let mut stderr = anstream::stderr();
    let red = anstyle::Style::new()
        .bold()
        .fg_color(Some(anstyle::AnsiColor::Red.into()));
    let _ = writeln!(stderr, "{red}error{red:#}: {err}");
    for cause in err.chain().skip(1) {
        let _ = writeln!(stderr, "  Caused by: {cause}");
    }
}
