//! Checks the language-neutral vectors in `tests/vectors/` against this
//! implementation. The expected values come from `tests/vectors/generate.py`,
//! an independent Python model of the protocol; see `tests/vectors/README.md`.
//!
//! Each test checks every vector of its file and then fails once, naming all
//! the vectors that disagree.

use std::net::{SocketAddr, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use upcase::conn::{RawCase, ServerConfig, ServerEvent, ServerMode};
use upcase::transform::{CaseMode, Upcaser};
use upcase::wire::{Address, Flags, Frame, FrameDecoder, FrameRepr, FrameType};

use upcase::testing::Pair;

#[path = "vectors/client.rs"]
mod client;
#[path = "vectors/datagram.rs"]
mod datagram;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn load<T: for<'de> Deserialize<'de>>(file: &str) -> T {
    let path = vectors_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid: {e}", path.display()))
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

fn show(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Panic once with every failure, so one run lists all disagreeing vectors.
fn report(file: &str, checked: usize, failures: Vec<String>) {
    assert!(checked > 0, "{file} holds no vectors");
    assert!(
        failures.is_empty(),
        "{} of {checked} vectors in {file} disagree with the implementation:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every file names the Unicode version its expected upper case came from.
#[derive(Deserialize)]
struct Header {
    unicode_version_of_generator: String,
}

// ---------------------------------------------------------------------------
// frames.json

#[derive(Deserialize)]
struct FramesFile {
    frames: Vec<FrameVector>,
    decode_errors: Vec<DecodeErrorVector>,
}

#[derive(Deserialize)]
struct FrameVector {
    name: String,
    hex: String,
    src: String,
    dst: String,
    #[serde(rename = "type")]
    frame_type: u8,
    type_name: String,
    flags: u8,
    more: bool,
    data_hex: String,
}

#[derive(Deserialize)]
struct DecodeErrorVector {
    name: String,
    hex: String,
    limit: u32,
    result: String,
}

fn address_text(address: Address) -> String {
    if address.is_unspecified() {
        "unspecified".to_owned()
    } else {
        format!("[{}]:{}", address.ip, address.port)
    }
}

fn parse_address(text: &str) -> Address {
    if text == "unspecified" {
        return Address::UNSPECIFIED;
    }
    let v6: SocketAddrV6 = text
        .parse()
        .unwrap_or_else(|e| panic!("address {text:?}: {e}"));
    Address {
        ip: *v6.ip(),
        port: v6.port(),
    }
}

fn check_frame(v: &FrameVector) -> Result<(), String> {
    let bytes = hex(&v.hex);
    let view = Frame::new_checked(&bytes[..]).map_err(|e| format!("view: {e}"))?;
    let parsed = FrameRepr::parse(&view).map_err(|e| format!("parse: {e}"))?;
    let got = (
        address_text(parsed.src),
        address_text(parsed.dst),
        u8::from(parsed.frame_type),
        parsed.frame_type.name(),
        parsed.flags.0,
        parsed.flags.more(),
        show(&parsed.data),
    );
    let want = (
        v.src.clone(),
        v.dst.clone(),
        v.frame_type,
        v.type_name.as_str(),
        v.flags,
        v.more,
        v.data_hex.clone(),
    );
    if got != want {
        return Err(format!("fields: got {got:?}, want {want:?}"));
    }
    let mut stream = BytesMut::from(&bytes[..]);
    match FrameDecoder::default().decode(&mut stream) {
        Ok(Some(decoded)) if decoded == parsed && stream.is_empty() => {}
        other => return Err(format!("streaming decode: {other:?}")),
    }
    let built = FrameRepr {
        src: parse_address(&v.src),
        dst: parse_address(&v.dst),
        frame_type: FrameType::from(v.frame_type),
        flags: Flags(v.flags),
        data: Bytes::from(hex(&v.data_hex)),
    };
    if built.to_bytes() != bytes {
        return Err("encoding the fields does not give the hex".to_owned());
    }
    Ok(())
}

fn check_decode_error(v: &DecodeErrorVector) -> Result<(), String> {
    let mut buf = BytesMut::from(&hex(&v.hex)[..]);
    let got = match FrameDecoder::new(v.limit).decode(&mut buf) {
        Ok(None) => "need_more".to_owned(),
        Ok(Some(frame)) => format!("a frame: {frame:?}"),
        Err(_) => "frame_too_large".to_owned(),
    };
    (got == v.result)
        .then_some(())
        .ok_or_else(|| format!("got {got}, want {}", v.result))
}

#[test]
fn frame_vectors_parse_to_their_fields_and_reencode() {
    let file: FramesFile = load("frames.json");
    let mut failures = Vec::new();
    for v in &file.frames {
        if let Err(e) = check_frame(v) {
            failures.push(format!("{}: {e}", v.name));
        }
    }
    for v in &file.decode_errors {
        if let Err(e) = check_decode_error(v) {
            failures.push(format!("{}: {e}", v.name));
        }
    }
    report(
        "frames.json",
        file.frames.len() + file.decode_errors.len(),
        failures,
    );
}

// ---------------------------------------------------------------------------
// transform.json

#[derive(Deserialize)]
struct TransformFile {
    vectors: Vec<TransformVector>,
}

#[derive(Deserialize)]
struct TransformVector {
    name: String,
    mode: String,
    input_hex: String,
    splits: Vec<usize>,
    output_hex: Option<String>,
    error: Option<StrictError>,
}

#[derive(Deserialize, Debug, PartialEq)]
struct StrictError {
    invalid_utf8_offset: u64,
    at_chunk: usize,
}

fn case_mode(name: &str) -> CaseMode {
    match name {
        "unicode-strict" => CaseMode::UnicodeStrict,
        "unicode-lossless" => CaseMode::UnicodeLossless,
        "ascii" => CaseMode::Ascii,
        other => panic!("unknown mode {other:?}"),
    }
}

/// Push the chunks, then finish: the output, or the error and the index of
/// the chunk that reported it (the chunk count when `finish` reported it).
fn run_transform(mode: CaseMode, chunks: &[&[u8]]) -> Result<Vec<u8>, StrictError> {
    let mut upcaser = Upcaser::new(mode);
    let mut out = BytesMut::new();
    for (index, chunk) in chunks.iter().enumerate() {
        upcaser.push(chunk, &mut out).map_err(|e| StrictError {
            invalid_utf8_offset: e.offset,
            at_chunk: index,
        })?;
    }
    upcaser.finish(&mut out).map_err(|e| StrictError {
        invalid_utf8_offset: e.offset,
        at_chunk: chunks.len(),
    })?;
    Ok(out.to_vec())
}

fn check_transform(v: &TransformVector) -> Result<(), String> {
    let input = hex(&v.input_hex);
    let mut bounds = vec![0];
    bounds.extend(&v.splits);
    bounds.push(input.len());
    if bounds.windows(2).any(|w| w[0] > w[1]) {
        return Err(format!("splits {:?} are not in order", v.splits));
    }
    let chunks: Vec<&[u8]> = bounds.windows(2).map(|w| &input[w[0]..w[1]]).collect();
    let got = run_transform(case_mode(&v.mode), &chunks);
    match (&got, &v.output_hex, &v.error) {
        (Ok(out), Some(want), None) if show(out) == *want => Ok(()),
        (Err(error), None, Some(want)) if error == want => Ok(()),
        (Ok(out), _, _) => Err(format!(
            "output {}, want {:?} / {:?}",
            show(out),
            v.output_hex,
            v.error
        )),
        (Err(error), _, _) => Err(format!(
            "error {error:?}, want {:?} / {:?}",
            v.output_hex, v.error
        )),
    }
}

#[test]
fn transform_vectors_match_for_their_splits() {
    let file: TransformFile = load("transform.json");
    let failures = file
        .vectors
        .iter()
        .filter_map(|v| check_transform(v).err().map(|e| format!("{}: {e}", v.name)))
        .collect();
    report("transform.json", file.vectors.len(), failures);
}

// ---------------------------------------------------------------------------
// transcripts.json

#[derive(Deserialize)]
struct TranscriptsFile {
    vectors: Vec<Transcript>,
}

#[derive(Deserialize)]
struct Transcript {
    name: String,
    server: ServerSpec,
    steps: Vec<Step>,
    server_hex: String,
    errors: Vec<ErrorEntry>,
    closes: bool,
}

#[derive(Deserialize)]
pub(crate) struct ServerSpec {
    mode: String,
    raw_case: String,
    max_frame: u32,
    pub(crate) local: String,
    pub(crate) peer: String,
}

#[derive(Deserialize)]
struct Step {
    client_hex: Option<String>,
    #[serde(default)]
    eof: bool,
    server_hex: String,
}

#[derive(Deserialize)]
struct ErrorEntry {
    code: u16,
}

pub(crate) fn server_config(spec: &ServerSpec) -> ServerConfig {
    ServerConfig {
        mode: match spec.mode.as_str() {
            "auto" => ServerMode::Auto,
            "raw" => ServerMode::Raw,
            "framed" => ServerMode::Framed,
            other => panic!("unknown server mode {other:?}"),
        },
        raw_case: match spec.raw_case.as_str() {
            "unicode" => RawCase::Unicode,
            "ascii" => RawCase::Ascii,
            other => panic!("unknown raw_case {other:?}"),
        },
        max_data_len: spec.max_frame,
        ..ServerConfig::default()
    }
}

fn check_transcript(v: &Transcript, now: Instant) -> Result<(), String> {
    let config = server_config(&v.server);
    let linger = config.linger;
    let local: SocketAddr = v.server.local.parse().expect("local address");
    let peer: SocketAddr = v.server.peer.parse().expect("peer address");
    let mut pair = Pair::between(config, local, peer, now);
    let mut problems = Vec::new();
    let mut total = Vec::new();
    for (index, step) in v.steps.iter().enumerate() {
        let mut sent = Vec::new();
        if let Some(client_hex) = &step.client_hex {
            sent = pair
                .try_feed(&hex(client_hex))
                .map_err(|e| format!("step {index}: {e}"))?;
        }
        if step.eof {
            pair.server.handle_eof(pair.now);
        }
        sent.extend(pair.flush());
        if show(&sent) != step.server_hex {
            problems.push(format!(
                "step {index}: server sent {}, want {}",
                show(&sent),
                step.server_hex
            ));
        }
        total.extend(sent);
    }
    // A server that stopped reading (BYE, fatal ERROR) closes at the latest
    // when its linger expires; an active one does nothing at that time.
    if !pair.server.is_closed() {
        pair.now = now + linger;
        pair.server.handle_timeout(pair.now);
        let late = pair.flush();
        if !late.is_empty() {
            problems.push(format!("sent {} at the linger deadline", show(&late)));
        }
    }
    if show(&total) != v.server_hex {
        problems.push(format!(
            "server sent\n    {}\n  want\n    {}",
            show(&total),
            v.server_hex
        ));
    }
    let codes: Vec<u16> = pair
        .events
        .iter()
        .filter_map(|event| match event {
            ServerEvent::ProtocolError(violation) => Some(violation.code().0),
            _ => None,
        })
        .collect();
    let want_codes: Vec<u16> = v.errors.iter().map(|e| e.code).collect();
    if codes != want_codes {
        problems.push(format!("error codes {codes:?}, want {want_codes:?}"));
    }
    if pair.server.is_closed() != v.closes {
        problems.push(format!(
            "closed: {}, want {}",
            pair.server.is_closed(),
            v.closes
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[test]
fn transcripts_give_the_expected_bytes_errors_and_close() {
    let file: TranscriptsFile = load("transcripts.json");
    let now = Instant::now();
    let mut failures = Vec::new();
    for v in &file.vectors {
        if let Err(e) = check_transcript(v, now) {
            failures.push(format!("{}: {e}", v.name));
        }
    }
    report("transcripts.json", file.vectors.len(), failures);
}

// ---------------------------------------------------------------------------
// The files are what the generator produces.

/// The expected upper case must not come from a newer Unicode than the one
/// this implementation applies, or it could expect mappings std lacks.
#[test]
fn vectors_come_from_a_unicode_version_no_newer_than_std() {
    for file in [
        "frames.json",
        "transform.json",
        "transcripts.json",
        "client.json",
    ] {
        let header: Header = load(file);
        let version: Vec<u8> = header
            .unicode_version_of_generator
            .split('.')
            .map(|part| part.parse().expect("a version like 14.0.0"))
            .collect();
        let (major, minor, update) = char::UNICODE_VERSION;
        assert!(
            version[..] <= [major, minor, update][..],
            "{file}: generated with Unicode {}, newer than std's {major}.{minor}.{update}",
            header.unicode_version_of_generator
        );
    }
}

/// README.md promises that names are unique within a list, so that a
/// failure report names one vector.
#[test]
fn vector_names_are_unique_within_each_list() {
    for file in [
        "frames.json",
        "transform.json",
        "transcripts.json",
        "client.json",
    ] {
        let content: serde_json::Map<String, serde_json::Value> = load(file);
        let mut lists = 0;
        for (key, value) in &content {
            let Some(list) = value.as_array() else {
                continue;
            };
            lists += 1;
            let mut seen = std::collections::HashSet::new();
            let repeated: Vec<&str> = list
                .iter()
                .map(|vector| vector["name"].as_str().expect("every vector has a name"))
                .filter(|name| !seen.insert(*name))
                .collect();
            assert!(
                repeated.is_empty(),
                "{file} {key}: {} names repeated: {repeated:?}",
                repeated.len()
            );
        }
        assert!(lists > 0, "{file} holds no lists");
    }
}

#[test]
fn json_files_are_what_generate_py_produces() {
    let script = vectors_dir().join("generate.py");
    let output = match Command::new("python3").arg(&script).arg("--check").output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("note: python3 not found; not checking that the vectors are up to date");
            return;
        }
        Err(e) => panic!("cannot run python3 {}: {e}", script.display()),
    };
    assert!(
        output.status.success(),
        "{} --check failed ({}):\n{}{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
