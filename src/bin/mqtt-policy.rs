//! The `mqtt-policy` command-line program.

fn main() -> std::process::ExitCode {
    mqtt_policy::cli::main()
}
