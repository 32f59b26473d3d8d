//! One module per subcommand: argument parsing and exit codes; the work is
//! done by the library.

pub mod bench;
pub mod client;
pub mod conform;
pub mod output;
pub mod serve;
