//! What wire values look like to people: the text a client prints for an
//! ERROR it received.

use super::*;

#[test]
fn an_error_payload_reads_as_name_number_and_message() {
    let payload = ErrorPayload::new(ErrorCode::MALFORMED, "reserved flag bits set");
    assert_eq!(payload.to_string(), "MALFORMED (1): reserved flag bits set");
    let unknown = ErrorPayload::new(ErrorCode(1000), "");
    assert_eq!(unknown.to_string(), "ERROR_1000 (1000): ");
}
