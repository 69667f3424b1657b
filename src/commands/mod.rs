//! One file per command. Commands load state through `store`, ask `policy`, print via `render`.

pub(crate) mod add;
pub(crate) mod demo;
pub(crate) mod demo_script;
pub(crate) mod doctor_gateway;
pub(crate) mod gateway;
pub(crate) mod gateway_announce;
pub(crate) mod gateway_routing;
pub(crate) mod gateway_shared;
pub(crate) mod gateway_verify;
pub(crate) mod import;
pub(crate) mod list;
pub(crate) mod remove;
pub(crate) mod run;
pub(crate) mod run_gateway;
mod run_store;
pub(crate) mod say;
pub(crate) mod status;
pub(crate) mod status_refresh;
pub(crate) mod status_watch;
pub(crate) mod switch;
pub(crate) mod switch_picker;

use std::io::Write;

use anyhow::Result;

use crate::cli::gateway::GatewayCommand;
use crate::cli::{Cli, Command, ImportCommand};
use crate::store::Store;

/// What every command gets: the data dir.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub store: Store,
}

impl Ctx {
    /// Print the store's pending warnings (corrupt files backed up, registry rebuilt) on stderr.
    pub fn flush_notices(&self) {
        for n in self.store.take_notices() {
            say::warn(&n);
        }
    }
}

/// Run the parsed command line; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32> {
    // Commands that never read the data dir run without resolving it (so no HOME is needed,
    // and a `cao --data-dir X` alias changes nothing for them); they do not offer the option.
    match &cli.command {
        Command::MockUpstream(a) => return demo::mock_upstream(a),
        Command::Completions(a) => return completions(a.shell),
        Command::Gateway(GatewayCommand::StateKey(a)) => return gateway::state_key(a),
        Command::Demo(a) => return demo::demo(a),
        _ => {}
    }
    let store = Store::resolve(cli.data_dir())?;
    let ctx = Ctx { store };
    let result = match cli.command {
        Command::Add(a) => add::run(&ctx, &a),
        Command::List(a) => list::list(&ctx, &a),
        Command::Current(a) => list::current(&ctx, &a),
        Command::Switch(a) => switch::switch(&ctx, &a),
        Command::Use(a) => switch::use_account(&ctx, &a),
        Command::Remove(a) => remove::run(&ctx, &a),
        Command::Import(ImportCommand::CodexAuth(a)) => import::codex_auth(&ctx, &a),
        Command::Status(a) => status::run(&ctx, &a),
        Command::Doctor(a) => status::doctor_deprecated(&ctx, &a),
        Command::Report(a) => status::report_deprecated(&ctx, &a),
        Command::Run(a) => run::run(&ctx, a),
        Command::Gateway(GatewayCommand::Start(a)) => gateway::start(&ctx, *a),
        Command::Gateway(GatewayCommand::Status(a)) => gateway::status(&ctx, &a),
        Command::Gateway(GatewayCommand::Enable(a)) => gateway::enable(&ctx, &a),
        Command::Gateway(GatewayCommand::Disable(a)) => gateway::disable(&ctx, &a),
        Command::Gateway(GatewayCommand::Verify(a)) => gateway_verify::verify(&ctx, &a),
        Command::MockUpstream(_)
        | Command::Completions(_)
        | Command::Demo(_)
        | Command::Gateway(GatewayCommand::StateKey(_)) => Ok(0), // handled above
    };
    ctx.flush_notices();
    result
}

fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // Generated into memory, then written: `generate` panics on a write error (a closed pipe,
    // `cao completions fish | head -1`), a returned error exits quietly (see main.rs).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "cao", &mut script);
    std::io::stdout().write_all(&script)?;
    Ok(0)
}
