//! Load-test driver for the Winzo engine (scenarios are filled in by the load-test work).
fn main() {
    eprintln!("winzo-load: no scenarios yet; see load-tests/README.md");
    std::process::exit(2);
}
