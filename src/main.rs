//! `eic-ssh`: see the library crate `eic_ssh` and the README.

fn main() -> std::process::ExitCode {
    eic_ssh::main_with_args(std::env::args_os())
}
