//! The run as one self-contained HTML page (`upcase conform --html PATH`),
//! what an implementer links to or attaches to a bug report, like
//! Autobahn|Testsuite's reports: a summary table (one row per case, linked
//! to its details), then per case its SPEC.md section, the rule, the
//! outcome, expected vs actual and the wire log.
//!
//! The page has no script and no external asset (the CSS is inline), and
//! every text is escaped. It is written as well-formed XML too (every
//! element closed, void elements self-closed), so a test can check it with
//! a strict parser.

use std::fmt::Write;

use super::report::{CaseOutcome, CaseResult, SuiteReport, lines, xml};

/// The page's style: readable in any browser, printable, no web fonts.
const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.1em; margin: 0; font-family: ui-monospace, monospace; }
.meta { color: #555; margin-top: 0; }
.verdict { font-size: 1.2em; font-weight: bold; padding: 0.5em 0.8em; border-radius: 4px; }
.verdict.pass { background: #dff0d8; color: #2d6a2d; }
.verdict.fail { background: #f8d7da; color: #842029; }
table { border-collapse: collapse; }
table.summary { width: 100%; margin: 1em 0 2em; }
table.summary th, table.summary td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
table.summary td.name { font-family: ui-monospace, monospace; }
td.time { text-align: right; color: #555; }
td.status, p.status { font-weight: bold; }
.passed .status { color: #2d6a2d; }
.failed .status { color: #b02a37; }
.skipped .status { color: #777; }
.warned .status { color: #9a6700; }
tr.failed { background: #fdf0f1; }
section.case { border: 1px solid #ddd; border-left: 6px solid #aaa; border-radius: 4px; margin: 1em 0; padding: 0.6em 1em; }
section.passed { border-left-color: #3c8d3c; }
section.failed { border-left-color: #b02a37; }
section.skipped { border-left-color: #bbb; }
section.warned { border-left-color: #d4a017; }
table.diff th { text-align: right; vertical-align: top; padding-right: 0.8em; }
pre { background: #f6f8fa; padding: 0.5em; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; margin: 0.2em 0; }
a { color: #0b5cad; }
";

impl SuiteReport {
    /// The report as one self-contained HTML page.
    pub fn to_html(&self) -> String {
        let (passed, failed, skipped) = self.counts();
        let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n");
        out.push_str("<meta charset=\"utf-8\"/>\n");
        let _ = writeln!(
            out,
            "<title>upcase conform {}: {}</title>",
            xml(&self.addr),
            xml(&self.summary())
        );
        let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
        let _ = writeln!(out, "<h1>UPCASE/1 conformance of {}</h1>", xml(&self.addr));
        let _ = writeln!(
            out,
            "<p class=\"meta\">upcase conform {}, expected case mapping: Unicode {}, {} cases in {:.2} s</p>",
            env!("CARGO_PKG_VERSION"),
            xml(&self.unicode_version),
            self.results.len(),
            self.elapsed_ms / 1000.0
        );
        let class = if failed == 0 { "pass" } else { "fail" };
        let _ = writeln!(
            out,
            "<p class=\"verdict {class}\">{}</p>",
            xml(&self.verdict())
        );
        let _ = writeln!(
            out,
            "<p class=\"counts\">{passed} passed, {failed} failed, {skipped} skipped</p>"
        );
        self.summary_table(&mut out);
        for (i, result) in self.results.iter().enumerate() {
            case_section(&mut out, i, result);
        }
        out.push_str("</body>\n</html>\n");
        out
    }

    fn summary_table(&self, out: &mut String) {
        out.push_str(
            "<table class=\"summary\">\n<thead><tr><th>Case</th><th>SPEC.md</th><th>Result</th><th>Time</th></tr></thead>\n<tbody>\n",
        );
        for (i, result) in self.results.iter().enumerate() {
            let (class, status) = status(result);
            let _ = writeln!(
                out,
                "<tr class=\"case {class}\"><td class=\"name\"><a href=\"#case-{i}\">{}</a></td><td class=\"section\">§{}</td><td class=\"status\">{status}</td><td class=\"time\">{:.1} ms</td></tr>",
                xml(&result.name),
                xml(&result.section),
                result.elapsed_ms
            );
        }
        out.push_str("</tbody>\n</table>\n");
    }
}

/// The CSS class and the word for a result's outcome.
fn status(result: &CaseResult) -> (&'static str, &'static str) {
    match result.outcome {
        CaseOutcome::Passed if !result.warnings.is_empty() => ("warned", "pass (warning)"),
        CaseOutcome::Passed => ("passed", "pass"),
        CaseOutcome::Failed(_) => ("failed", "fail"),
        CaseOutcome::Skipped { .. } => ("skipped", "skip"),
    }
}

fn case_section(out: &mut String, i: usize, result: &CaseResult) {
    let (class, status) = status(result);
    let _ = writeln!(
        out,
        "<section class=\"case {class}\" id=\"case-{i}\">\n<h2>{}</h2>",
        xml(&result.name)
    );
    let unicode = if result.unicode_dependent {
        " (depends on the Unicode version)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "<p class=\"rule\">SPEC.md §{}: {}{unicode}</p>",
        xml(&result.section),
        xml(&result.description)
    );
    let _ = writeln!(out, "<p class=\"status\">{status}</p>");
    match &result.outcome {
        CaseOutcome::Passed => {}
        CaseOutcome::Skipped { reason } => {
            let _ = writeln!(out, "<p class=\"reason\">Skipped: {}</p>", xml(reason));
        }
        CaseOutcome::Failed(failure) => {
            let _ = writeln!(out, "<p class=\"message\">{}</p>", xml(&failure.message));
            if failure.expected.is_some() || failure.actual.is_some() {
                out.push_str("<table class=\"diff\">\n");
                for (label, text) in [("expected", &failure.expected), ("actual", &failure.actual)]
                {
                    if let Some(text) = text {
                        let _ = writeln!(
                            out,
                            "<tr class=\"{label}\"><th>{label}</th><td><pre>{}</pre></td></tr>",
                            xml(text)
                        );
                    }
                }
                out.push_str("</table>\n");
            }
        }
    }
    for warning in &result.warnings {
        let _ = writeln!(out, "<p class=\"warning\">Warning: {}</p>", xml(warning));
    }
    if !result.wire_log.is_empty() {
        // Open for failures: the log is what an implementer reads first.
        let open = if result.failed() {
            " open=\"open\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<details{open}><summary>wire log ({} lines)</summary><pre class=\"wire-log\">{}</pre></details>",
            result.wire_log.len(),
            xml(&lines(&result.wire_log))
        );
    }
    out.push_str("</section>\n");
}
