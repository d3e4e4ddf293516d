//! The `winzo` binary: parses the command line and hands over to the library.
use clap::Parser;

/// Allocations from this size up are mapped on their own and unmapped when freed. glibc's
/// default threshold grows with the largest block freed, so after the first password hashes
/// (argon2 takes 19 MiB each) those blocks came from the heap arenas of the hashing threads
/// and stayed resident: the engine peaked near 300 MiB in the bets benchmark.
const MMAP_THRESHOLD_BYTES: libc::c_int = 1 << 20;
/// Free memory kept at the top of a heap before it is given back to the system.
const TRIM_THRESHOLD_BYTES: libc::c_int = 32 << 20;

fn main() -> std::process::ExitCode {
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        // Fixing the threshold also stops glibc from raising the trim threshold with it; at its
        // 128 KiB default every free near a heap's top gives pages back, to fault them in again.
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
    }
    let cli = winzo::cli::Cli::parse();
    match winzo::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("winzo: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
