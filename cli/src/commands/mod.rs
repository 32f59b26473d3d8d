//! One module per subcommand: argument parsing and exit codes; the work is
//! done by the library.

pub mod bench;
pub mod client;
pub mod completions;
pub mod conform;
pub mod conform_client;
pub mod man;
pub mod output;
pub mod serve;

use std::time::Duration;

/// The value of a seconds option (`--timeout 2.5`) as a `Duration`: the one
/// reading every command gives them. A positive number of seconds, as every
/// example writes it; not humantime's `2s`/`500ms`, whose
/// `parse_duration("2")` is an error ("time unit needed"), so that
/// `--timeout 2` would stop working.
pub fn seconds(flag: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|duration| !duration.is_zero())
        .ok_or_else(|| format!("{flag} must be a positive number of seconds, not {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_positive_finite_numbers() {
        assert_eq!(seconds("--t", 0.5), Ok(Duration::from_millis(500)));
        assert_eq!(seconds("--t", 2.0), Ok(Duration::from_secs(2)));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e30] {
            let error = seconds("--timeout", bad).unwrap_err();
            assert!(
                error.starts_with("--timeout must be a positive number of seconds"),
                "{error}"
            );
        }
    }
}
