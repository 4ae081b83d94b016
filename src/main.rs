//! The `outdial` binary: all of it lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    outdial::cli::main()
}
