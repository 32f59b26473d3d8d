//! `examples/conn_client.rs` passes every case of `upcase conform --client`.
//!
//! No libtest harness: this binary is both the test and, called with
//! `client` first, the example itself, so that the suite can run the
//! example as a process without building it apart.

use std::process::ExitCode;

use upcase_cli::conform::client_suite::{self, ClientOptions, Flag};

#[path = "../examples/conn_client.rs"]
#[allow(dead_code)] // the example's `main`
mod conn_client;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("client") {
        return conn_client::run(&args[2..]);
    }
    let options = ClientOptions {
        command: vec![args[0].clone(), "client".into()],
        filters: Vec::new(),
        // The example speaks TCP only: the UDP cases are skipped.
        supports: vec![Flag::Bytes, Flag::MaxFrame, Flag::Timeout],
    };
    let report = client_suite::run_with(&options, |result| {
        println!("{}", result.render("", false));
    })
    .expect("no filters");
    println!("{}", report.summary());
    let udp_cases = client_suite::all_cases()
        .into_iter()
        .filter(|case| case.needs.contains(&Flag::Udp))
        .count();
    if report.all_passed() && report.counts().2 == udp_cases {
        println!("test the_example_client_passes_every_client_case ... ok");
        ExitCode::SUCCESS
    } else {
        println!("failures:\n{}", report.render_failures());
        ExitCode::FAILURE
    }
}
