//! The `twokey` binary: argument parsing and wiring, nothing else.

mod audit;
mod can;
mod cli;
mod client;
mod custody;
mod login;
mod posture;
mod report;
mod serve;
mod who_can;

use clap::Parser;

#[tokio::main]
async fn main() {
    let args = cli::Cli::parse();
    let code = match cli::run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
