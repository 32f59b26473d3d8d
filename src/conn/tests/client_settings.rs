//! A client keeps the settings it was given, and the defaults are the
//! documented ones.

use crate::conn::{ClientConfig, ClientConnection};

#[test]
fn a_client_keeps_the_settings_it_was_given() {
    let config = ClientConfig {
        max_fragment_len: 7,
        ..ClientConfig::default()
    };
    let client = ClientConnection::new(std::time::Instant::now(), config.clone());
    assert_eq!(client.config(), &config);
    assert_eq!(ClientConfig::default().max_fragment_len, 64 * 1024);
}
