//! `winzo-load`: runs load scenarios against a running Winzo engine and writes the results
//! under `load-tests/results/` (see `winzo_load` for what a run does). Exits 1 when any
//! scenario FAILED its correctness checks or could not run. `winzo-load summarize <dir>`
//! prints the summary table of a `make bench` results folder.
use clap::Parser;
use winzo_load::{report, run_scenario, Opts, Scenario};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("summarize") {
        let dir = args.get(2).map_or("load-tests/results", String::as_str);
        print!(
            "{}",
            winzo_load::summary::summarize(std::path::Path::new(dir))?
        );
        return Ok(());
    }
    let opts = Opts::parse();
    let scenarios: Vec<Scenario> = opts
        .scenarios
        .iter()
        .map(|s| s.parse())
        .collect::<anyhow::Result<_>>()?;
    let mut failed = false;
    for s in scenarios {
        eprintln!("== {}", s.name());
        match run_scenario(&opts, s).await {
            Ok(r) => {
                println!("{}", report::markdown(&r));
                failed |= r.status == "FAILED";
            }
            Err(e) => {
                eprintln!("{}: could not run: {e:#}", s.name());
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
