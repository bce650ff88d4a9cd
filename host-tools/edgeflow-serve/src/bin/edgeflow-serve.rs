//! `edgeflow-serve ARTIFACT`: the model server alone, for Linux boards (the same as
//! `edgeflow serve`, without the training and conversion toolchain in the binary).

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "edgeflow-serve",
    version,
    about = "Serve an edgeflow artifact over HTTP or stdin/stdout"
)]
struct Cli {
    #[command(flatten)]
    args: edgeflow_serve::ServeArgs,
}

fn main() {
    if let Err(e) = edgeflow_serve::run(Cli::parse().args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
