//! The guard commands on their own, wired the way the `twokey` binary wires
//! them: `cargo run -p twokey-guard --example guard -- scan PATH...`.

use clap::{Parser, Subcommand};
use twokey_guard::{run_scan, run_watch, ScanArgs, WatchArgs};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run Sigma rules over CloudTrail files.
    Scan(ScanArgs),
    /// Run Sigma rules continuously over stdin.
    Watch(WatchArgs),
}

fn main() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let code = match Cli::parse().cmd {
        Cmd::Scan(a) => run_scan(&a, &mut out)?,
        Cmd::Watch(a) => run_watch(&a, &mut out)?,
    };
    std::process::exit(code);
}
