//! The `nas-host` command line; all work happens in the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    nas_host::train::serial_candle_elementwise();
    let cli = nas_host::commands::Cli::parse();
    match nas_host::commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
