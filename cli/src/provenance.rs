//! What every machine-readable report starts with: which report format it
//! is, which tool wrote it, and which protocol it tests against, so that a
//! program reading reports from several versions can tell them apart.
//! IMPLEMENTING.md, "Reports for machines", documents every field.

use serde::Serialize;

/// The head of a JSON report (flattened into its top level).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The report format: `upcase-conform-report` or `upcase-bench-report`.
    pub schema: &'static str,
    /// Its version: raised when a field is removed, renamed or changes
    /// meaning (adding a field does not raise it).
    pub schema_version: u32,
    /// The program that wrote it: `upcase`.
    pub tool: &'static str,
    /// Its version (`upcase --version`).
    pub tool_version: &'static str,
    /// The protocol the tool speaks: `UPCASE/1`.
    pub spec: &'static str,
    /// The protocol version of SPEC.md §2.3 (the preface's version byte).
    pub spec_version: u8,
}

impl Provenance {
    /// The head of a report of format `schema`, version `schema_version`.
    pub fn new(schema: &'static str, schema_version: u32) -> Provenance {
        Provenance {
            schema,
            schema_version,
            tool: "upcase",
            tool_version: env!("CARGO_PKG_VERSION"),
            spec: "UPCASE/1",
            spec_version: upcase::wire::VERSION,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_version_is_the_prefaces() {
        let head = Provenance::new("x", 1);
        assert_eq!(head.spec_version, 1);
        assert_eq!(head.tool_version, env!("CARGO_PKG_VERSION"));
    }
}
