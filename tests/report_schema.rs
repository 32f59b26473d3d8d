//! The JSON reports of `upcase conform` and `upcase bench` have exactly the
//! fields IMPLEMENTING.md, "Reports for machines", names: each named field
//! appears in a real report, and no report has a field the list leaves out.

#[path = "support/serve_process.rs"]
mod serve_process;
#[path = "support/tutorial_server.rs"]
mod tutorial_server;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use serve_process::ServeProcess;
use serve_process::child::TempPath;
use tutorial_server::{TutorialServer, upcase};

/// The fields the section's tables name, `results[].outcome.status` style.
fn documented() -> BTreeSet<String> {
    let doc = include_str!("../IMPLEMENTING.md");
    let section = doc
        .split("### Reports for machines")
        .nth(1)
        .expect("IMPLEMENTING.md has a \"Reports for machines\" section");
    let section = section.split("\n#").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(field, _)| field.to_string())
        .collect()
}

/// Every field path in `value`: objects' keys joined by `.`, `[]` for the
/// elements of an array.
fn fields(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                out.insert(path.clone());
                fields(inner, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                fields(item, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// A conform report with passes, skips and failures whose values are bytes:
/// the tutorial's server, as README.md runs it, written to a directory that
/// does not exist yet.
fn conform_report() -> Value {
    let server = TutorialServer::start(&["--forever"]);
    // One directory per call: the tests run in parallel.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    // Removed however the test ends.
    let dir = TempPath::new(&format!("upcase-report-schema-{call}"));
    let path = dir.path().join("new/dir/report.json");
    let out = upcase(
        &[
            "conform",
            &server.addr.to_string(),
            "--server-mode",
            "raw",
            "--unicode",
            "14.0",
            "--json",
            path.to_str().unwrap(),
        ],
        b"",
    );
    let text = std::fs::read_to_string(&path);
    let text = text.unwrap_or_else(|e| {
        panic!(
            "no report at {} ({e}): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// A bench report with an error: `--echo` against a server that
/// upper-cases, so every reply differs.
fn bench_report() -> Value {
    let server = ServeProcess::start(&[]);
    let out = upcase(
        &[
            "bench",
            &server.tcp.to_string(),
            "--requests",
            "20",
            "--echo",
            "--json",
        ],
        b"",
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bench printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn the_reports_have_exactly_the_documented_fields() {
    let conform = conform_report();
    let bench = bench_report();
    let mut found = BTreeSet::new();
    fields(&conform, "", &mut found);
    fields(&bench, "", &mut found);
    let documented = documented();
    let undocumented: Vec<_> = found.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&found).collect();
    assert!(
        undocumented.is_empty(),
        "in a report but not in IMPLEMENTING.md: {undocumented:?}"
    );
    assert!(
        missing.is_empty(),
        "in IMPLEMENTING.md but in no report: {missing:?}"
    );
}

#[test]
fn both_reports_say_their_format_tool_and_protocol() {
    for (report, schema) in [
        (conform_report(), "upcase-conform-report"),
        (bench_report(), "upcase-bench-report"),
    ] {
        assert_eq!(report["schema"], schema);
        assert_eq!(report["schema_version"], 1);
        assert_eq!(report["tool"], "upcase");
        assert_eq!(report["tool_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(report["spec"], "UPCASE/1");
        assert_eq!(report["spec_version"], 1);
    }
}

#[test]
fn conform_gives_bytes_in_hex() {
    let report = conform_report();
    let results = report["results"].as_array().unwrap();
    let invalid = results
        .iter()
        .find(|r| r["name"] == "raw/7.1/invalid-bytes-kept")
        .expect("the case ran");
    // "OK \x80 END" upper-cased, the lone continuation byte kept (SPEC.md §7.1).
    assert_eq!(
        invalid["outcome"]["expected_bytes"]["hex"],
        "4f4b208020454e44"
    );
    assert_eq!(invalid["outcome"]["expected_bytes"]["len"], 8);
    assert_eq!(invalid["outcome"]["actual_bytes"]["hex"], "");
    let sent = invalid["wire_log"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["direction"] == "sent")
        .expect("the case sent something");
    assert_eq!(sent["peer"], "c1");
    assert_eq!(sent["bytes"]["hex"], "6f6b208020656e64");
}
