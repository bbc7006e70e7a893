//! `qbo-sim`: the Intuit emulator as a process, for demos and out-of-process tests. The
//! emulator and this command are the `qbo-sim` crate's (`crates/sim`); the binary is declared
//! here so that this package's tests can run it.

fn main() -> std::process::ExitCode {
    qbo_sim::cli::main()
}
