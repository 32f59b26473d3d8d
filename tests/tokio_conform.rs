//! The core is sans-IO: examples/tokio_server.rs drives the same
//! `ServerConnection` with tokio, and the conformance suite's TCP cases must
//! pass against it as they do against `upcase::net`.

#[path = "../examples/tokio_server.rs"]
#[allow(dead_code)] // the example's `main`
mod tokio_server;

use std::net::SocketAddr;
use std::time::Duration;

use upcase::conn::ServerConfig;
use upcase_cli::conform::{self, CaseOutcome, Options};

/// Start the example's accept loop on a free port, on its own runtime thread.
fn start(config: ServerConfig) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            tokio_server::accept_all(listener, config).await
        })
    });
    addr
}

#[test]
fn the_tokio_example_passes_every_tcp_case() {
    let addr = start(ServerConfig::default());
    let report = conform::run(&Options::new(addr)).expect("no filter");
    assert!(
        report.all_passed(),
        "failures:\n{}",
        report.render_failures()
    );
    let passed = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, CaseOutcome::Passed))
        .count();
    assert!(
        passed >= 40,
        "only {passed} cases ran: {}",
        report.summary()
    );
}

/// The idle-timeout cases need a server started with a short one.
#[test]
fn the_tokio_example_passes_the_idle_timeout_cases() {
    let idle_timeout = Duration::from_millis(500);
    let addr = start(ServerConfig {
        idle_timeout,
        ..ServerConfig::default()
    });
    let mut options = Options::new(addr);
    options.idle_timeout = Some(idle_timeout);
    options.filters = vec!["framed/9.1".into(), "raw/9.1".into()];
    let report = conform::run(&options).expect("the filters match");
    assert!(
        report.all_passed(),
        "failures:\n{}",
        report.render_failures()
    );
    let (passed, _, skipped) = report.counts();
    assert!(
        passed >= 2 && skipped == 0,
        "every idle case ran: {}",
        report.summary()
    );
}
