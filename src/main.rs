//! The `cao` binary: parse the command line, run the command, map errors to exit codes.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

// The gateway allocates a little for every request (header maps, futures, the body); mimalloc's
// thread-local free lists do that in far fewer instructions than glibc's malloc, and it
// compiles from its bundled source (no system library). Built with `no_thp`: with transparent
// huge pages its arenas took the gateway's RSS from 20 to 38 MB. BENCHMARKS.md has both.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match cao::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => usage_error(err),
    };
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

/// Print clap's error and exit (2 for usage errors, 0 for --help/--version). `cao run exec hi`
/// gets a tip: Codex's arguments go after `--`.
fn usage_error(err: clap::Error) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = err.render().ansi().to_string();
    let is_run = err.render().to_string().contains("Usage: cao run");
    if is_run && err.kind() == clap::error::ErrorKind::UnknownArgument {
        let codex_args: Vec<String> = args
            .iter()
            .skip_while(|a| *a != "run")
            .skip(1)
            .filter(|a| !a.starts_with("--") || a.len() > 2)
            .map(|a| {
                if a.contains(' ') {
                    format!("{a:?}")
                } else {
                    a.clone()
                }
            })
            .collect();
        let tip = format!(
            "  tip: Codex's own arguments go after `--`: cao run -- {}\n\n",
            codex_args.join(" ")
        );
        let text = match text.find("Usage:") {
            Some(at) => format!("{}{tip}{}", &text[..at], &text[at..]),
            None => format!("{text}{tip}"),
        };
        let _ = anstream::stderr().write_all(text.as_bytes());
        std::process::exit(2);
    }
    err.exit()
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
    for cause in causes(err) {
        let _ = writeln!(stderr, "  Caused by: {cause}");
    }
}

/// The causes below `err`'s own message, each once: a wrapper that shows its source's text
/// as its own (the redis crate's errors do) would print the same line twice.
fn causes(err: &anyhow::Error) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if out.last() != Some(&text) {
            out.push(text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[derive(Debug)]
    struct Echo(std::io::Error);

    impl std::fmt::Display for Echo {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.fmt(f)
        }
    }

    impl std::error::Error for Echo {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_that_repeats_its_source_is_printed_once() {
        let inner = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        let err = anyhow::Error::new(Echo(inner)).context("Redis at X is not trusted");
        assert_eq!(
            super::causes(&err),
            ["invalid peer certificate: UnknownIssuer"]
        );
        let err = anyhow::anyhow!("inner").context("middle").context("top");
        assert_eq!(super::causes(&err), ["middle", "inner"]);
    }
}
