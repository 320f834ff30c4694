//! The command line: `egress [--config FILE]`, `egress check --config FILE`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// An egress proxy: HTTP CONNECT and plain HTTP forwarding, and TLS passthrough routed by
/// SNI, from one config file.
///
/// With no --config, egress runs its embedded default: an HTTP proxy on 127.0.0.1:8080 and
/// an SNI proxy on 127.0.0.1:8443 to port 443, with the system resolver. Logs go to stderr; set EGRESS_LOG (e.g.
/// "debug" or "egress_core=trace") to change what is logged.
#[derive(Debug, Parser)]
#[command(name = "egress", version, about, long_about)]
pub(crate) struct Cli {
    /// The TOML config file to run.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Log filter when EGRESS_LOG is unset.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    pub(crate) log: String,

    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check a config file and explain every mistake with its line; exit 0 when valid.
    Check {
        /// The TOML config file to check.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
}
