//! The few answers the endpoint gives, as the bytes written to the peer.
//!
//! Every answer says `Connection: close` and is followed by the close:
//! one request per connection means no body ever has to be read or
//! skipped (the bytes after a head are left unread), and nothing a peer
//! pipelines behind its first request is ever looked at.

use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

use super::head::Request;

/// The plain-text explanation's content type.
const TEXT: &str = "text/plain; charset=utf-8";

/// The answer to `request`; `render` writes the exposition, called only
/// when the request is for it.
pub(super) fn answer(request: Request, render: impl FnOnce() -> String) -> Vec<u8> {
    match request {
        Request::Metrics { head_only } => {
            let body = render();
            let head = head("200 OK", CONTENT_TYPE, body.len(), "");
            if head_only {
                head
            } else {
                [head, body.into_bytes()].concat()
            }
        }
        Request::WrongMethod => with_text(
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n",
            "only GET and HEAD are served at /metrics\n",
        ),
        Request::NotFound => with_text("404 Not Found", "", "not found: metrics are at /metrics\n"),
        Request::Malformed => with_text("400 Bad Request", "", "not an HTTP/1.x request\n"),
        Request::TooLarge => with_text(
            "431 Request Header Fields Too Large",
            "",
            "the request head is over the endpoint's bound (8 KiB, 64 headers by default)\n",
        ),
    }
}

/// The answer to a peer whose head did not arrive before its deadline.
pub(super) fn timed_out() -> Vec<u8> {
    with_text(
        "408 Request Timeout",
        "",
        "the request did not arrive in time\n",
    )
}

/// The answer to a peer over the connection cap, written once, without
/// waiting, before its connection is closed.
pub(super) fn too_busy() -> Vec<u8> {
    with_text(
        "503 Service Unavailable",
        "Retry-After: 1\r\n",
        "too many metrics connections open: try again later\n",
    )
}

fn with_text(status: &str, extra: &str, body: &str) -> Vec<u8> {
    [
        head(status, TEXT, body.len(), extra),
        body.as_bytes().to_vec(),
    ]
    .concat()
}

/// A status line and headers; `extra` is more header lines, each ending
/// in CRLF.
fn head(status: &str, content_type: &str, length: usize, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\
         {extra}Connection: close\r\n\r\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// httparse reads the answer back: its status and headers, and the
    /// body that follows the head.
    fn parse(bytes: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(len) = response.parse(bytes).unwrap() else {
            panic!("an incomplete head: {bytes:?}");
        };
        let headers = response
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into()))
            .collect();
        (response.code.unwrap(), headers, bytes[len..].to_vec())
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    }

    #[test]
    fn a_scrape_gets_the_exposition_and_head_its_length_only() {
        let (code, headers, body) = parse(&answer(Request::Metrics { head_only: false }, || {
            "a 1\n".into()
        }));
        assert_eq!((code, body.as_slice()), (200, &b"a 1\n"[..]));
        assert_eq!(header(&headers, "Content-Type"), CONTENT_TYPE);
        assert_eq!(header(&headers, "Content-Length"), "4");
        let (code, headers, body) = parse(&answer(Request::Metrics { head_only: true }, || {
            "a 1\n".into()
        }));
        assert_eq!((code, body.len()), (200, 0));
        assert_eq!(header(&headers, "Content-Length"), "4");
    }

    #[test]
    fn every_answer_closes_and_its_length_is_its_body() {
        for (bytes, code) in [
            (answer(Request::WrongMethod, String::new), 405),
            (answer(Request::NotFound, String::new), 404),
            (answer(Request::Malformed, String::new), 400),
            (answer(Request::TooLarge, String::new), 431),
            (timed_out(), 408),
            (too_busy(), 503),
        ] {
            let (parsed, headers, body) = parse(&bytes);
            assert_eq!(parsed, code);
            assert_eq!(header(&headers, "Connection"), "close");
            assert_eq!(header(&headers, "Content-Length"), body.len().to_string());
        }
        let (_, headers, _) = parse(&answer(Request::WrongMethod, String::new));
        assert_eq!(header(&headers, "Allow"), "GET, HEAD");
    }

    #[test]
    fn only_a_scrape_renders_the_exposition() {
        for request in [Request::WrongMethod, Request::NotFound, Request::Malformed] {
            answer(request, || panic!("rendered for {request:?}"));
        }
    }
}
