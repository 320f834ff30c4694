//! The `egress` binary: a thin shell over egress-core that reads a config file (or runs the
//! embedded default), logs to stderr, and shuts down gracefully on SIGINT or SIGTERM.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use egress_core::config::Config;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};

/// Exit code for a config that cannot be used (clap uses 2 for bad arguments too).
const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure to start or run.
const EXIT_RUNTIME: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    match cli.command {
        Some(Command::Check { config }) => check(&config),
        None => run(cli.config.as_deref()),
    }
}

fn init_logging(default_filter: &str) {
    let filter =
        EnvFilter::try_from_env("EGRESS_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Reads and checks a config file, or the embedded default when `path` is `None`.
fn load(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    let Some(path) = path else {
        return Ok(Config::embedded_default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("egress: cannot read {}: {e}", path.display());
        ExitCode::from(EXIT_CONFIG)
    })?;
    let config = Config::from_toml(&text).map_err(|e| {
        for mistake in &e.mistakes {
            eprintln!("{}: {mistake}", path.display());
        }
        ExitCode::from(EXIT_CONFIG)
    })?;
    // The library lets an embedding program hand connections to a block without addresses;
    // the binary has no such program, so such a block could never serve anything.
    let sni = config.sni.iter().map(|b| ("[[sni]]", b.listen.is_empty()));
    let http = config
        .http
        .iter()
        .map(|b| ("[[http]]", b.listen.is_empty()));
    let mut deaf = sni.chain(http).filter(|(_, empty)| *empty).peekable();
    if deaf.peek().is_none() {
        return Ok(config);
    }
    for (kind, _) in deaf {
        eprintln!(
            "{}: an {kind} block has an empty `listen` list",
            path.display()
        );
    }
    Err(ExitCode::from(EXIT_CONFIG))
}

fn check(path: &std::path::Path) -> ExitCode {
    match load(Some(path)) {
        Ok(config) => {
            let listeners: usize = config.sni.iter().map(|b| b.listen.len()).sum::<usize>()
                + config.http.iter().map(|b| b.listen.len()).sum::<usize>();
            eprintln!("{}: ok ({listeners} listening address(es))", path.display());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn run(path: Option<&std::path::Path>) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("egress: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    runtime.block_on(async {
        let server = match config.bind().await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("egress: {e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
        };
        for addr in server.local_addrs() {
            tracing::info!(%addr, "listening");
        }
        server.run(shutdown_signal()).await;
        ExitCode::SUCCESS
    })
}

/// Raises the soft limit on open files to the hard limit, as nginx's
/// `worker_rlimit_nofile` and Go's runtime do: each tunnel holds two descriptors, and the
/// common soft default of 1024 would cap egress near 500 tunnels.
fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::debug!(limit = ?limit.maximum, "raised the open-file limit"),
        Err(e) => {
            tracing::warn!(error = %e, soft = ?limit.current, "cannot raise the open-file limit")
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
