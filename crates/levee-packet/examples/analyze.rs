//! `cargo run -p levee-packet --example analyze -- FILE...`: prints the
//! analysis of each capture as pretty JSON (what `levee pcap analyze --json`
//! will print, until the CLI exists).

fn main() -> std::process::ExitCode {
    let cfg = levee_packet::AnalyzeConfig::default();
    let mut status = std::process::ExitCode::SUCCESS;
    for path in std::env::args().skip(1) {
        match levee_packet::analyze_path(&path, &cfg) {
            Ok(a) => match serde_json::to_string_pretty(&a) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("{path}: {e}");
                    status = std::process::ExitCode::FAILURE;
                }
            },
            Err(e) => {
                eprintln!("{path}: {e}");
                status = std::process::ExitCode::FAILURE;
            }
        }
    }
    status
}
