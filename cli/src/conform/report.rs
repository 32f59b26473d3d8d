//! Results: per case and for the run, as text, JSON and JUnit XML.

use std::fmt::Write;

use serde::Serialize;

use super::case::Failure;
use super::wire_log::WireEvent;
use crate::provenance::Provenance;

/// The JSON report's format (IMPLEMENTING.md, "Reports for machines").
pub const SCHEMA: &str = "upcase-conform-report";

/// Its version: raised when a field is removed, renamed or changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CaseOutcome {
    /// The server did what SPEC.md requires.
    Passed,
    /// It did not.
    Failed(Failure),
    /// The case did not run (the server lacks a setting it needs).
    Skipped {
        /// Why, and how to run it.
        reason: String,
    },
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// The rule it checks.
    pub description: String,
    /// The SPEC.md section it checks (`5.1`).
    pub section: String,
    /// Whether the expected output depends on the Unicode version.
    pub unicode_dependent: bool,
    /// Passed, failed or skipped.
    pub outcome: CaseOutcome,
    /// What the server did that SPEC.md recommends against (SHOULD NOT)
    /// without forbidding it; a case with warnings still passes.
    pub warnings: Vec<String>,
    /// How long it took.
    pub elapsed_ms: f64,
    /// What was sent and received, one entry per event.
    pub wire_log: Vec<WireEvent>,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    /// The server under test; for the client suite, the client's command.
    pub addr: String,
    /// The Unicode version of the oracle.
    pub unicode_version: String,
    /// The Unicode version the server follows: the oracle's unless the
    /// suite was told another (`--unicode`).
    pub server_unicode: String,
    /// How long the whole run took.
    pub elapsed_ms: f64,
    /// What the preface exchange before the cases said, when the address
    /// holds no UPCASE/1 server or a raw-only one (cases were skipped).
    pub early_verdict: Option<String>,
    /// One result per selected case, in run order.
    pub results: Vec<CaseResult>,
    /// The last case whose connection the server accepted before it
    /// refused a later case's: a server that serves one client and exits
    /// (the Python tutorial's) can pass or fail only the first case.
    pub refusing_after: Option<String>,
}

impl CaseResult {
    /// Whether the case failed.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, CaseOutcome::Failed(_))
    }

    /// The result as people read it: `✔ name`, or `✘ name` with expected
    /// vs actual, or `- name (skipped: why)`; the wire log too if `verbose`.
    pub fn render(&self, unicode_version: &str, verbose: bool) -> String {
        let unicode = if self.unicode_dependent {
            format!(" (Unicode {unicode_version})")
        } else {
            String::new()
        };
        let mut out = match &self.outcome {
            CaseOutcome::Passed => {
                let mut text = format!("✔ {}{unicode}", self.name);
                for warning in &self.warnings {
                    let _ = write!(text, "\n    warning: {warning}");
                }
                text
            }
            CaseOutcome::Failed(failure) => {
                let mut text = format!("✘ {}{unicode} — {}", self.name, self.description);
                for line in failure.to_string().lines() {
                    let _ = write!(text, "\n    {line}");
                }
                text
            }
            CaseOutcome::Skipped { reason } => format!("- {} (skipped: {reason})", self.name),
        };
        if verbose && !self.wire_log.is_empty() {
            for line in &self.wire_log {
                let _ = write!(out, "\n      {line}");
            }
        }
        out
    }
}

impl SuiteReport {
    /// The names of the cases whose outcome `pick` accepts (for tests and
    /// tools that compare which cases passed, failed or were skipped).
    pub fn names_where(
        &self,
        pick: impl Fn(&CaseOutcome) -> bool,
    ) -> std::collections::BTreeSet<String> {
        self.results
            .iter()
            .filter(|r| pick(&r.outcome))
            .map(|r| r.name.clone())
            .collect()
    }

    /// (passed, failed, skipped).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for result in &self.results {
            match result.outcome {
                CaseOutcome::Passed => counts.0 += 1,
                CaseOutcome::Failed(_) => counts.1 += 1,
                CaseOutcome::Skipped { .. } => counts.2 += 1,
            }
        }
        counts
    }

    /// Every failed case, rendered in full (expected, actual, wire log),
    /// one after another: what a test shows when it wanted none.
    pub fn render_failures(&self) -> String {
        self.results
            .iter()
            .filter(|r| r.failed())
            .map(|r| r.render(&self.unicode_version, true))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether every case that ran passed.
    pub fn all_passed(&self) -> bool {
        self.counts().1 == 0
    }

    /// `N passed, M failed, K skipped` (and `, W with warnings` when any).
    pub fn summary(&self) -> String {
        let (passed, failed, skipped) = self.counts();
        let warned = self.results.iter().filter(|r| !r.warnings.is_empty());
        match warned.count() {
            0 => format!("{passed} passed, {failed} failed, {skipped} skipped"),
            warned => {
                format!(
                    "{passed} passed, {failed} failed, {skipped} skipped, {warned} with warnings"
                )
            }
        }
    }

    /// The claim the run supports: "conforms to UPCASE/1 with Unicode 17.0"
    /// when no case failed (the version is the server's, `--unicode`), or
    /// "does not conform to UPCASE/1: N cases failed".
    pub fn verdict(&self) -> String {
        if let Some(early) = &self.early_verdict
            && self.counts().1 > 0
        {
            return format!("does not conform to UPCASE/1: {early}");
        }
        match self.counts().1 {
            0 => format!(
                "conforms to UPCASE/1 with Unicode {} (in the {} cases that ran)",
                self.server_unicode,
                self.counts().0
            ),
            1 => "does not conform to UPCASE/1: 1 case failed".to_string(),
            failed => format!("does not conform to UPCASE/1: {failed} cases failed"),
        }
    }

    /// What to say when the server stopped accepting connections mid-run
    /// ([`refusing_after`](Self::refusing_after)).
    pub fn refusal_note(&self) -> Option<String> {
        self.refusing_after.as_ref().map(|last| {
            format!(
                "note: the server refused connections after {last}: does it serve one client and exit, as the Python tutorial's does? conform needs a server that keeps accepting (README.md, \"What conform finds in the tutorial's server\")"
            )
        })
    }

    /// The report as pretty-printed JSON, headed by its [`Provenance`]
    /// (format, tool and protocol versions).
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Json<'a> {
            #[serde(flatten)]
            head: Provenance,
            #[serde(flatten)]
            report: &'a SuiteReport,
        }
        let json = Json {
            head: Provenance::new(SCHEMA, SCHEMA_VERSION),
            report: self,
        };
        serde_json::to_string_pretty(&json).expect("a report always serializes")
    }

    /// The report as JUnit XML (one `testcase` per case, the wire log in `system-out`).
    pub fn to_junit(&self) -> String {
        let (_, failed, skipped) = self.counts();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites><testsuite name=\"upcase conform {}\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" errors=\"0\" time=\"{:.3}\">",
            xml(&self.addr),
            self.results.len(),
            self.elapsed_ms / 1000.0
        );
        for result in &self.results {
            let classname = result
                .name
                .rsplit_once('/')
                .map_or("", |(prefix, _)| prefix);
            let _ = write!(
                out,
                "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
                xml(classname),
                xml(&result.name),
                result.elapsed_ms / 1000.0
            );
            match &result.outcome {
                CaseOutcome::Passed => {}
                CaseOutcome::Failed(failure) => {
                    let _ = write!(
                        out,
                        "<failure message=\"{}\">{}</failure>",
                        xml(&failure.message),
                        xml(&failure.to_string())
                    );
                }
                CaseOutcome::Skipped { reason } => {
                    let _ = write!(out, "<skipped message=\"{}\"/>", xml(reason));
                }
            }
            let warnings = result.warnings.iter().map(|w| format!("warning: {w}"));
            let log = result.wire_log.iter().map(WireEvent::to_string);
            let system_out: Vec<String> = warnings.chain(log).collect();
            if !system_out.is_empty() {
                let _ = write!(
                    out,
                    "<system-out>{}</system-out>",
                    xml(&system_out.join("\n"))
                );
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("</testsuite></testsuites>\n");
        out
    }
}

/// A wire log as the text and HTML reports show it, one line an entry.
pub(super) fn lines(log: &[WireEvent]) -> String {
    let lines: Vec<String> = log.iter().map(WireEvent::to_string).collect();
    lines.join("\n")
}

/// Escape text for XML content and attributes; drop characters XML 1.0 forbids.
pub(super) fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> SuiteReport {
        let result = |name: &str, outcome| CaseResult {
            name: name.into(),
            description: "a rule".into(),
            section: "2".into(),
            unicode_dependent: false,
            outcome,
            warnings: Vec::new(),
            elapsed_ms: 1.0,
            wire_log: vec![WireEvent::new(0.5, "c1", "→ <x> & \"y\"")],
        };
        SuiteReport {
            addr: "127.0.0.1:1".into(),
            unicode_version: "17.0".into(),
            server_unicode: "17.0".into(),
            elapsed_ms: 3.0,
            early_verdict: None,
            results: vec![
                result("framed/2/a", CaseOutcome::Passed),
                result(
                    "framed/2/b",
                    CaseOutcome::Failed(Failure::mismatch("wrong", "A", "a")),
                ),
                result(
                    "framed/9/c",
                    CaseOutcome::Skipped {
                        reason: "needs x".into(),
                    },
                ),
            ],
            refusing_after: None,
        }
    }

    #[test]
    fn summary_counts_each_outcome() {
        assert_eq!(report().summary(), "1 passed, 1 failed, 1 skipped");
        assert!(!report().all_passed());
    }

    #[test]
    fn junit_escapes_and_marks_failures_and_skips() {
        let junit = report().to_junit();
        assert!(
            junit.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{junit}"
        );
        assert!(
            junit.contains(
                "<failure message=\"wrong\">wrong\n  expected: A\n  actual:   a</failure>"
            ),
            "{junit}"
        );
        assert!(junit.contains("<skipped message=\"needs x\"/>"), "{junit}");
        assert!(
            junit.contains("c1 → &lt;x&gt; &amp; &quot;y&quot;"),
            "{junit}"
        );
    }

    /// Why this writer and not quick-junit 0.8 (nextest's): given these
    /// characters, which a server's ERROR message can carry into `actual`,
    /// quick-junit writes U+FFFE and U+FFFF as they are, and roxmltree
    /// rejects its output (`NonXmlChar('\u{fffe}')`); here they become
    /// U+FFFD, visibly, and the report stays XML 1.0.
    #[test]
    fn junit_stays_well_formed_with_characters_xml_forbids() {
        let mut report = report();
        report.results[1].outcome = CaseOutcome::Failed(Failure::mismatch(
            "wrong \u{fffe}\u{ffff}\u{1b}[31m\u{7}",
            "A",
            "server said \u{fffe}",
        ));
        let junit = report.to_junit();
        let parsed = roxmltree::Document::parse(&junit);
        assert!(parsed.is_ok(), "{parsed:?}\n{junit}");
        let failure = parsed
            .unwrap()
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .and_then(|n| n.attribute("message").map(String::from));
        assert_eq!(
            failure.as_deref(),
            Some("wrong \u{fffd}\u{fffd}\u{fffd}[31m\u{fffd}")
        );
    }

    #[test]
    fn json_has_status_per_case() {
        let json: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        assert_eq!(json["results"][1]["outcome"]["status"], "failed");
        assert_eq!(json["results"][1]["outcome"]["expected"], "A");
        assert_eq!(json["results"][2]["outcome"]["reason"], "needs x");
    }
}
