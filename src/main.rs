//! The `winzo` binary: parses the command line and hands over to the library.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = winzo::cli::Cli::parse();
    match winzo::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("winzo: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
