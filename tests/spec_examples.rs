//! Replays every worked example of SPEC.md §12 against the real state
//! machines: the spec's hex is checked byte for byte, so the spec and the
//! implementation cannot drift apart. Format: SPEC.md §12.1.

use upcase::conn::{DatagramConfig, DatagramReply, ServerConfig, respond_to_datagram};
use upcase::testing::{Pair, local, peer};

const SPEC: &str = include_str!("../SPEC.md");

#[derive(Debug)]
enum Line {
    Client(Vec<u8>),
    /// `C: <eof>`: the client closes its sending side (FIN).
    ClientEof,
    Server(Vec<u8>),
    Close,
    Drop,
}

#[derive(Debug)]
struct Block {
    kind: String,
    first_line: usize,
    lines: Vec<Line>,
}

fn parse_hex(text: &str, line_no: usize) -> Vec<u8> {
    text.split_whitespace()
        .map(|pair| {
            u8::from_str_radix(pair, 16)
                .unwrap_or_else(|_| panic!("SPEC.md line {line_no}: bad hex byte {pair:?}"))
        })
        .collect()
}

fn blocks() -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for (index, raw) in SPEC.lines().enumerate() {
        let line_no = index + 1;
        if let Some(info) = raw.strip_prefix("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None if info.starts_with("upcase-") => {
                    current = Some(Block {
                        kind: info.trim().to_string(),
                        first_line: line_no,
                        lines: Vec::new(),
                    })
                }
                None => current = None,
            }
            if !info.starts_with("upcase-") && !info.is_empty() {
                // An opening fence of another language: skip to its end.
                current = None;
            }
            continue;
        }
        let Some(block) = current.as_mut() else {
            continue;
        };
        let content = raw.split('#').next().unwrap().trim();
        if content.is_empty() {
            continue;
        }
        let parsed = if let Some(rest) = content.strip_prefix("C:") {
            match rest.trim() {
                "<eof>" => Line::ClientEof,
                hex => Line::Client(parse_hex(hex, line_no)),
            }
        } else if let Some(rest) = content.strip_prefix("S:") {
            match rest.trim() {
                "<close>" => Line::Close,
                "<drop>" => Line::Drop,
                hex => Line::Server(parse_hex(hex, line_no)),
            }
        } else {
            panic!("SPEC.md line {line_no}: neither C: nor S: {raw:?}");
        };
        block.lines.push(parsed);
    }
    blocks
}

/// What the client does in one step.
#[derive(Debug)]
enum Input {
    Bytes(Vec<u8>),
    Eof,
}

/// One client input and the server output expected for it.
type Step = (Input, Vec<u8>);

/// Group lines into steps; also whether the block ends with `<close>`.
fn steps(block: &Block) -> (Vec<Step>, bool) {
    let mut steps: Vec<Step> = Vec::new();
    let mut closes = false;
    let mut last_was_client = false;
    for line in &block.lines {
        match line {
            Line::Client(bytes) => {
                match steps.last_mut() {
                    Some((Input::Bytes(input), _)) if last_was_client => {
                        input.extend_from_slice(bytes)
                    }
                    _ => steps.push((Input::Bytes(bytes.clone()), Vec::new())),
                }
                last_was_client = true;
            }
            Line::ClientEof => {
                steps.push((Input::Eof, Vec::new()));
                last_was_client = false;
            }
            Line::Server(bytes) => {
                steps
                    .last_mut()
                    .expect("S: before any C:")
                    .1
                    .extend_from_slice(bytes);
                last_was_client = false;
            }
            Line::Close => closes = true,
            Line::Drop => panic!("<drop> in a transcript (line {})", block.first_line),
        }
    }
    (steps, closes)
}

fn replay_transcript(block: &Block) {
    let (steps, closes) = steps(block);
    let mut pair = Pair::new(ServerConfig::default());
    for (number, (input, expected)) in steps.iter().enumerate() {
        let output = match input {
            Input::Bytes(bytes) => pair.try_feed(bytes).unwrap_or_else(|e| {
                panic!("block at line {}: input refused: {e}", block.first_line)
            }),
            Input::Eof => {
                pair.server.handle_eof(pair.now);
                pair.flush()
            }
        };
        assert_eq!(
            hex(&output),
            hex(expected),
            "SPEC.md block at line {}, step {}: server output differs",
            block.first_line,
            number + 1
        );
    }
    assert_eq!(
        pair.server.has_ended(),
        closes,
        "SPEC.md block at line {}: <close> says the server ends the connection",
        block.first_line
    );
}

fn replay_datagram(block: &Block) {
    let mut datagram = Vec::new();
    let mut expected = Vec::new();
    let mut dropped = false;
    for line in &block.lines {
        match line {
            Line::Client(bytes) => datagram.extend_from_slice(bytes),
            Line::Server(bytes) => expected.extend_from_slice(bytes),
            Line::Drop => dropped = true,
            Line::Close => panic!("<close> in a datagram block (line {})", block.first_line),
            Line::ClientEof => panic!("<eof> in a datagram block (line {})", block.first_line),
        }
    }
    let reply = respond_to_datagram(&datagram, local(), peer(), &DatagramConfig::default());
    match reply {
        DatagramReply::Send(bytes) => {
            assert!(
                !dropped,
                "block at line {}: expected a drop",
                block.first_line
            );
            assert_eq!(
                hex(&bytes),
                hex(&expected),
                "SPEC.md datagram block at line {}",
                block.first_line
            );
        }
        other => assert!(dropped, "block at line {}: got {other:?}", block.first_line),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn every_worked_example_in_the_spec_replays_exactly() {
    let blocks = blocks();
    let mut replayed = 0;
    for block in &blocks {
        match block.kind.as_str() {
            "upcase-transcript" => replay_transcript(block),
            "upcase-datagram" => replay_datagram(block),
            "upcase-transcript-illustrative" => continue,
            other => panic!("unknown block kind {other} at line {}", block.first_line),
        }
        replayed += 1;
    }
    assert!(
        replayed >= 15,
        "only {replayed} examples found: is the parser broken?"
    );
}
