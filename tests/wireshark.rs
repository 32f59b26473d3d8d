//! The Wireshark dissector `contrib/wireshark/upcase.lua`, run by tshark on
//! captures this test writes: every worked example of SPEC.md §12 and every
//! frame of `tests/vectors/frames.json`, wrapped in TCP segments and UDP
//! datagrams (one segment holding many frames, one frame over many segments,
//! a frame split at every byte offset), and a live capture of `upcase
//! conform` against `upcase serve` taken with tcpdump.
//!
//! tshark prints every field, the Info column and every expert message
//! (`-T ek`); the expected values are computed here from the bytes by the
//! layout of SPEC.md §3 and the output format in the dissector's header
//! comment, and checked against the vectors' own field values, never taken
//! from the dissector.
//!
//! Without tshark every test prints "skipped: tshark not found"; the live
//! capture also needs tcpdump and root (`.ci/run` installs both).
//!
//! `contrib/wireshark/example.pcapng` is the §12 capture written here;
//! `UPCASE_WRITE_EXAMPLE=1 cargo test -p upcase-cli --test wireshark spec`
//! rewrites it (converted with `editcap -F pcapng`).

#[path = "support/child.rs"]
mod child;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use child::{Process, READY, TempPath};
use serde::Deserialize;

const MAGIC: [u8; 7] = [0xc0, b'U', b'P', b'C', b'A', b'S', b'E'];
const PREFACE: [u8; 8] = [0xc0, b'U', b'P', b'C', b'A', b'S', b'E', 1];
const HEADER_LEN: usize = 42;
/// The dissector's default receive limit (its preference `upcase.limit`).
const LIMIT: u64 = 1_048_576;
const SERVER_PORT: u16 = 9999;
const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Every field the dissector defines that a test compares, and the columns.
const FIELDS: &[&str] = &[
    "upcase.magic",
    "upcase.version",
    "upcase.src.addr",
    "upcase.src.ipv4",
    "upcase.src.port",
    "upcase.dst.addr",
    "upcase.dst.ipv4",
    "upcase.dst.port",
    "upcase.type",
    "upcase.flags",
    "upcase.flags.more",
    "upcase.flags.reserved",
    "upcase.length",
    "upcase.data",
    "upcase.text",
    "upcase.error.code",
    "upcase.error.message",
    "upcase.bye.reason",
    "upcase.raw.direction",
    "upcase.raw.data",
    "upcase.raw.text",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dissector() -> String {
    format!(
        "lua_script:{}",
        repo().join("contrib/wireshark/upcase.lua").display()
    )
}

fn tool_runs(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Returns false, after saying so, when tshark is not installed.
fn have_tshark() -> bool {
    let found = tool_runs("tshark", "--version");
    if !found {
        println!("skipped: tshark not found");
    }
    found
}

/// A scratch file, removed when the test ends, however it ends.
fn scratch(name: &str) -> TempPath {
    TempPath::at(
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("wireshark-{}-{name}", std::process::id())),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

// ---------------------------------------------------------------------------
// A pcap writer: Ethernet, IPv4, TCP or UDP. Checksums of TCP and UDP are 0
// and tshark is told not to check them.

struct Pcap {
    bytes: Vec<u8>,
    packets: u32,
}

impl Pcap {
    fn new() -> Pcap {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&[0; 8]); // time zone, accuracy
        bytes.extend_from_slice(&262_144u32.to_le_bytes()); // snapshot length
        bytes.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
        Pcap { bytes, packets: 0 }
    }

    /// Adds one packet; returns its frame number (from 1, as tshark counts).
    fn ipv4(&mut self, src: SocketAddrV4, dst: SocketAddrV4, protocol: u8, l4: &[u8]) -> u32 {
        let total = 20 + l4.len();
        assert!(total <= 65_535, "an IPv4 packet holds at most 65,535 bytes");
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&(total as u16).to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0x40, 0, 64, protocol, 0, 0]);
        ip.extend_from_slice(&src.ip().octets());
        ip.extend_from_slice(&dst.ip().octets());
        let checksum = ipv4_checksum(&ip);
        ip[10..12].copy_from_slice(&checksum.to_be_bytes());

        let mut frame = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00];
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(l4);
        self.packets += 1;
        // One packet per millisecond: the same bytes every run.
        let micros = u64::from(self.packets) * 1000;
        self.bytes
            .extend_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(&frame);
        self.packets
    }

    fn udp(&mut self, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> u32 {
        let mut udp = Vec::new();
        udp.extend_from_slice(&src.port().to_be_bytes());
        udp.extend_from_slice(&dst.port().to_be_bytes());
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(payload);
        self.ipv4(src, dst, 17, &udp)
    }

    fn write(&self, path: &Path) {
        std::fs::write(path, &self.bytes).unwrap();
    }
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;
const FIN_ACK: u8 = 0x11;
/// Largest TCP payload per segment; larger sends become several segments.
const MAX_SEGMENT: usize = 32_768;

/// One TCP connection's sequence numbers; `true` is the client's side.
struct Tcp {
    client: SocketAddrV4,
    server: SocketAddrV4,
    client_seq: u32,
    server_seq: u32,
}

impl Tcp {
    fn open(pcap: &mut Pcap, client: SocketAddrV4, server: SocketAddrV4) -> Tcp {
        let mut tcp = Tcp {
            client,
            server,
            client_seq: 1000,
            server_seq: 5000,
        };
        tcp.segment(pcap, true, SYN, &[]);
        tcp.client_seq += 1;
        tcp.segment(pcap, false, SYN | ACK, &[]);
        tcp.server_seq += 1;
        tcp.segment(pcap, true, ACK, &[]);
        tcp
    }

    fn segment(&mut self, pcap: &mut Pcap, from_client: bool, flags: u8, data: &[u8]) -> u32 {
        let (src, dst, seq, ack) = if from_client {
            (self.client, self.server, self.client_seq, self.server_seq)
        } else {
            (self.server, self.client, self.server_seq, self.client_seq)
        };
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&src.port().to_be_bytes());
        tcp.extend_from_slice(&dst.port().to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&(if flags & ACK != 0 { ack } else { 0 }).to_be_bytes());
        tcp.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        tcp.extend_from_slice(data);
        let seq = if from_client {
            &mut self.client_seq
        } else {
            &mut self.server_seq
        };
        *seq = seq.wrapping_add(data.len() as u32);
        pcap.ipv4(src, dst, 6, &tcp)
    }

    fn close(&mut self, pcap: &mut Pcap) {
        self.segment(pcap, true, FIN_ACK, &[]);
        self.client_seq += 1;
        self.segment(pcap, false, FIN_ACK, &[]);
        self.server_seq += 1;
        self.segment(pcap, true, ACK, &[]);
    }
}

// ---------------------------------------------------------------------------
// What tshark should print for each packet, computed from the bytes.

/// The fields (name → every occurrence in order), Info parts and expert
/// messages expected for one packet.
#[derive(Default, Debug, Clone, PartialEq)]
struct Expect {
    fields: BTreeMap<String, Vec<String>>,
    info: Vec<String>,
    experts: Vec<String>,
}

impl Expect {
    fn push(&mut self, field: &str, value: impl ToString) {
        self.fields
            .entry(field.to_string())
            .or_default()
            .push(value.to_string());
    }

    fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.info.is_empty() && self.experts.is_empty()
    }
}

/// Text as the dissector shows it: Rust's lossy decoding is the "maximal
/// subpart" rule the header comment names. Wireshark strings end at NUL.
fn field_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.split('\0').next().unwrap().to_string()
}

/// The Info column's quoted text: escaped, at most 32 characters, then "…".
fn quoted(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for (count, ch) in String::from_utf8_lossy(bytes).chars().enumerate() {
        if count == 32 {
            out.push('…');
            break;
        }
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn type_name(code: u8) -> Option<&'static str> {
    ["TEXT", "BYTES", "PING", "PONG", "BYE", "ERROR"]
        .get(usize::from(code).wrapping_sub(1))
        .copied()
}

fn error_name(code: u16) -> Option<&'static str> {
    [
        "MALFORMED",
        "UNSUPPORTED_VERSION",
        "FRAME_TOO_LARGE",
        "INVALID_UTF8",
        "UNKNOWN_TYPE",
        "UNEXPECTED_TYPE",
        "TYPE_MISMATCH",
        "IDLE_TIMEOUT",
        "BUSY",
    ]
    .get(usize::from(code).wrapping_sub(1))
    .copied()
}

fn expect_preface(e: &mut Expect, preface: &[u8]) {
    let version = preface[7];
    e.push("upcase.magic", hex(&preface[..7]));
    e.push("upcase.version", version);
    e.info.push(format!("Preface v{version}"));
    if version != 1 {
        e.experts.push(format!(
            "Unsupported version {version}; UPCASE/1 is version 1 (SPEC.md §2.3)"
        ));
    }
}

/// An 18-byte address (SPEC.md §3.1): IPv6 address and port fields, and the
/// IPv4 field for an IPv4-mapped address.
fn expect_address(e: &mut Expect, side: &str, bytes: &[u8]) {
    let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[..16]).unwrap());
    e.push(&format!("upcase.{side}.addr"), ip);
    if let Some(v4) = ip.to_ipv4_mapped() {
        e.push(&format!("upcase.{side}.ipv4"), v4);
    }
    e.push(
        &format!("upcase.{side}.port"),
        u16::from_be_bytes([bytes[16], bytes[17]]),
    );
}

/// One frame of which `bytes` is all there is (a datagram may end early);
/// returns the bytes it takes: a frame over the limit is its header alone.
fn expect_frame(e: &mut Expect, bytes: &[u8]) -> usize {
    if bytes.len() < HEADER_LEN {
        e.info.push("Truncated frame".into());
        e.experts.push(format!(
            "Truncated frame: {} of the 42 header bytes (SPEC.md §3.1)",
            bytes.len()
        ));
        return bytes.len();
    }
    expect_address(e, "src", &bytes[0..18]);
    expect_address(e, "dst", &bytes[18..36]);
    let frame_type = bytes[36];
    let flags = bytes[37];
    let length = u32::from_be_bytes(bytes[38..42].try_into().unwrap());
    e.push("upcase.type", format!("0x{frame_type:02x}"));
    e.push("upcase.flags", format!("0x{flags:02x}"));
    e.push("upcase.flags.more", flags & 1);
    e.push("upcase.flags.reserved", format!("0x{:02x}", flags >> 1));
    e.push("upcase.length", length);
    let more = flags & 1 == 1;
    let mut info = match type_name(frame_type) {
        Some(name) => name.to_string(),
        None => {
            e.experts.push(format!(
                "Unknown frame type 0x{frame_type:02x} (SPEC.md §4.1)"
            ));
            format!("Type 0x{frame_type:02x}")
        }
    };
    if flags & 0xfe != 0 {
        e.experts.push(format!(
            "Reserved flag bits 0x{:02x} set (SPEC.md §3.3)",
            flags & 0xfe
        ));
    }
    if more && frame_type != 1 && frame_type != 2 {
        e.experts
            .push("MORE set on a frame that is not TEXT or BYTES (SPEC.md §3.3)".into());
    }
    let mut taken = HEADER_LEN;
    if u64::from(length) > LIMIT {
        e.experts.push(format!(
            "Length {length} is over the receive limit of {LIMIT} bytes (SPEC.md §3.4): \
             a receiver rejects the header and awaits no data"
        ));
        info.push_str(&format!(" {length} B (over the limit)"));
    } else {
        let data = &bytes[HEADER_LEN..bytes.len().min(HEADER_LEN + length as usize)];
        taken += data.len();
        if !data.is_empty() {
            e.push("upcase.data", hex(data));
        }
        if data.len() < length as usize {
            e.experts.push(format!(
                "Truncated frame: {} of {length} data bytes (SPEC.md §3.1)",
                data.len()
            ));
        }
        match frame_type {
            1 => {
                e.push("upcase.text", field_text(data));
                info.push_str(&format!(" {length} B {}", quoted(data)));
            }
            6 if data.len() < 2 => {
                e.experts
                    .push("ERROR data shorter than 2 bytes: no error code (SPEC.md §6.6)".into());
                info.push_str(" (no code)");
            }
            6 => {
                let code = u16::from_be_bytes([data[0], data[1]]);
                e.push("upcase.error.code", code);
                e.push("upcase.error.message", field_text(&data[2..]));
                let name = error_name(code).map_or(format!("code {code}"), str::to_string);
                info.push_str(&format!(" {name} {}", quoted(&data[2..])));
            }
            5 if !data.is_empty() => {
                e.push("upcase.bye.reason", field_text(data));
                info.push_str(&format!(" {}", quoted(data)));
            }
            5 => {}
            _ if length > 0 => info.push_str(&format!(" {length} B")),
            _ => {}
        }
    }
    if more {
        info.push_str(" [MORE]");
    }
    e.info.push(info);
    taken
}

fn expect_raw(e: &mut Expect, bytes: &[u8], from_client: bool) {
    let direction = if from_client {
        "client to server"
    } else {
        "server to client"
    };
    e.push("upcase.raw.direction", direction);
    e.push("upcase.raw.data", hex(bytes));
    e.push("upcase.raw.text", field_text(bytes));
    e.info.push(format!(
        "Raw {direction} {} B {}",
        bytes.len(),
        quoted(bytes)
    ));
}

/// A datagram (SPEC.md §8.1): preface and one frame, or raw.
fn expect_datagram(e: &mut Expect, payload: &[u8], from_client: bool) {
    if payload.len() < 8 || payload[..7] != MAGIC {
        expect_raw(e, payload, from_client);
        return;
    }
    expect_preface(e, &payload[..8]);
    let taken = expect_frame(e, &payload[8..]);
    let rest = payload.len() - 8 - taken;
    if rest > 0 {
        e.experts.push(format!(
            "{rest} bytes after the frame: a datagram holds the preface and one frame (SPEC.md §8.2)"
        ));
        e.info.push(format!("{rest} B after the frame"));
    }
}

/// A TCP connection as a receiver parses it (SPEC.md §2.1, §3.5): the
/// client's first bytes choose raw or framed; framed sides start with the
/// preface, then whole frames, each shown in the segment that completes it.
#[derive(Default)]
struct StreamModel {
    framed: Option<bool>,
    /// Bytes of each side (client, server) not yet part of a shown PDU.
    pending: [Vec<u8>; 2],
    preface_seen: [bool; 2],
}

impl StreamModel {
    fn segment(&mut self, e: &mut Expect, from_client: bool, data: &[u8]) {
        let side = usize::from(!from_client);
        self.pending[side].extend_from_slice(data);
        if self.framed.is_none() {
            let seen = &self.pending[side];
            let compared = seen.len().min(7);
            if seen[..compared] != MAGIC[..compared] {
                self.framed = Some(false);
            } else if seen.len() >= 8 {
                self.framed = Some(true);
            } else {
                return;
            }
        }
        let pending = &mut self.pending[side];
        if self.framed == Some(false) {
            expect_raw(e, pending, from_client);
            pending.clear();
            return;
        }
        if !self.preface_seen[side] {
            if pending.len() < 8 {
                return;
            }
            expect_preface(e, &pending[..8]);
            pending.drain(..8);
            self.preface_seen[side] = true;
        }
        while pending.len() >= HEADER_LEN {
            let length = u32::from_be_bytes(pending[38..42].try_into().unwrap());
            let frame_len = if u64::from(length) > LIMIT {
                HEADER_LEN
            } else {
                HEADER_LEN + length as usize
            };
            if pending.len() < frame_len {
                return;
            }
            let taken = expect_frame(e, &pending[..frame_len]);
            assert_eq!(taken, frame_len);
            pending.drain(..frame_len);
        }
    }
}

/// A capture under construction and what each of its packets should show.
struct Scenario {
    pcap: Pcap,
    expect: BTreeMap<u32, Expect>,
    next_port: u16,
}

impl Scenario {
    fn new() -> Scenario {
        Scenario {
            pcap: Pcap::new(),
            expect: BTreeMap::new(),
            next_port: 40_000,
        }
    }

    fn client_port(&mut self) -> u16 {
        self.next_port += 1;
        self.next_port
    }

    /// A TCP connection to `server_port`: each step is one send, cut into
    /// `MAX_SEGMENT`-byte segments; FIN both ways at the end. `decoded`:
    /// whether the dissector is expected to claim it at all.
    fn tcp(&mut self, server_port: u16, steps: &[(bool, Vec<u8>)], decoded: bool) {
        let client = SocketAddrV4::new(LOCALHOST, self.client_port());
        let server = SocketAddrV4::new(LOCALHOST, server_port);
        let mut tcp = Tcp::open(&mut self.pcap, client, server);
        let mut model = StreamModel::default();
        for (from_client, bytes) in steps {
            for chunk in bytes.chunks(MAX_SEGMENT) {
                let frame = tcp.segment(&mut self.pcap, *from_client, PSH_ACK, chunk);
                let e = self.expect.entry(frame).or_default();
                if decoded {
                    model.segment(e, *from_client, chunk);
                }
            }
        }
        tcp.close(&mut self.pcap);
    }

    /// A datagram from the client to `server_port`, and the reply if any.
    fn datagrams(&mut self, server_port: u16, request: &[u8], reply: Option<&[u8]>) {
        let client = SocketAddrV4::new(LOCALHOST, self.client_port());
        let server = SocketAddrV4::new(LOCALHOST, server_port);
        let frame = self.pcap.udp(client, server, request);
        expect_datagram(self.expect.entry(frame).or_default(), request, true);
        if let Some(reply) = reply {
            let frame = self.pcap.udp(server, client, reply);
            expect_datagram(self.expect.entry(frame).or_default(), reply, false);
        }
    }

    /// Writes the capture, decodes it with tshark and compares every packet.
    fn check(&self, name: &str, extra: &[&str]) {
        let mut path = scratch(&format!("{name}.pcap"));
        if std::env::var_os("UPCASE_KEEP_CAPTURES").is_some() {
            path.keep();
        }
        self.pcap.write(path.path());
        let packets = decode(path.path(), extra);
        assert_eq!(
            packets.len(),
            self.pcap.packets as usize,
            "{name}: tshark shows every packet"
        );
        let mut failures = Vec::new();
        let none = Expect::default();
        for (index, actual) in packets.iter().enumerate() {
            let number = index as u32 + 1;
            let expected = self.expect.get(&number).unwrap_or(&none);
            let mut actual = actual.clone();
            if expected.is_empty() {
                // Not ours, or a segment of a PDU that a later one completes.
                actual.info.clear();
            }
            let mut wanted_experts = expected.experts.clone();
            wanted_experts.sort();
            actual.experts.sort();
            let wanted = Expect {
                fields: expected.fields.clone(),
                info: if expected.info.is_empty() {
                    Vec::new()
                } else {
                    vec![expected.info.join(", ")]
                },
                experts: wanted_experts,
            };
            if actual != wanted {
                failures.push(format!(
                    "packet {number}:\n  expected {wanted:?}\n  tshark   {actual:?}"
                ));
            }
        }
        let decoded = self.expect.values().filter(|e| !e.is_empty()).count();
        assert!(decoded > 0, "{name}: the capture holds UPCASE/1 packets");
        assert!(
            failures.is_empty(),
            "{name}: {} of {} packets differ:\n{}",
            failures.len(),
            packets.len(),
            failures
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Runs tshark with the dissector on `capture`: per packet, every field of
/// `FIELDS`, the Info column (when the packet shows UPCASE/1) and the
/// expert messages.
fn decode(capture: &Path, extra: &[&str]) -> Vec<Expect> {
    let mut command = Command::new("tshark");
    command
        .args(["-n", "-X", &dissector(), "-r"])
        .arg(capture)
        .args(["-o", "ip.check_checksum:FALSE"])
        .args(["-o", "tcp.check_checksum:FALSE"])
        .args(["-o", "udp.check_checksum:FALSE"])
        .args(extra)
        .args(["-T", "ek", "-e", "_ws.col.Protocol", "-e", "_ws.col.Info"])
        .args(["-e", "_ws.expert.message"]);
    for field in FIELDS {
        command.args(["-e", field]);
    }
    let output = child::run("tshark", &mut command, b"");
    assert!(
        output.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut packets = Vec::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let json: serde_json::Value = serde_json::from_str(line).expect("tshark -T ek is JSON");
        let Some(layers) = json.get("layers") else {
            continue; // an {"index": …} line
        };
        let values = |key: &str| -> Vec<String> {
            layers[key.replace('.', "_")]
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        // The dissector's expert messages cite SPEC.md; TCP's own (SYN,
        // FIN…) do not. Lua errors and exceptions are kept to fail on.
        let experts = values("_ws.expert.message")
            .into_iter()
            .filter(|m| {
                m.contains("SPEC.md") || m.starts_with("Lua Error") || m.contains("Malformed")
            })
            .collect();
        let mut packet = Expect {
            experts,
            ..Expect::default()
        };
        if values("_ws.col.Protocol") == ["UPCASE"] {
            packet.info = values("_ws.col.Info");
        }
        for field in FIELDS {
            let found = values(field);
            if !found.is_empty() {
                packet.fields.insert(field.to_string(), found);
            }
        }
        packets.push(packet);
    }
    packets
}

// ---------------------------------------------------------------------------
// SPEC.md §12

struct Block {
    kind: String,
    /// Client (true) and server sends: runs of C: and S: lines.
    sends: Vec<(bool, Vec<u8>)>,
}

fn spec_blocks() -> Vec<Block> {
    let spec = std::fs::read_to_string(repo().join("SPEC.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for line in spec.lines() {
        if let Some(info) = line.strip_prefix("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None if info.starts_with("upcase-") => {
                    current = Some(Block {
                        kind: info.trim().to_string(),
                        sends: Vec::new(),
                    })
                }
                None => {}
            }
            continue;
        }
        let Some(block) = current.as_mut() else {
            continue;
        };
        let content = line.split('#').next().unwrap().trim();
        let (from_client, rest) = if let Some(rest) = content.strip_prefix("C:") {
            (true, rest)
        } else if let Some(rest) = content.strip_prefix("S:") {
            (false, rest)
        } else {
            assert!(content.is_empty(), "SPEC.md: neither C: nor S: {line:?}");
            continue;
        };
        if rest.trim().starts_with('<') {
            continue; // <close> or <drop>: the capture ends the same way
        }
        let bytes: Vec<u8> = rest
            .split_whitespace()
            .map(|pair| u8::from_str_radix(pair, 16).expect("hex byte"))
            .collect();
        match block.sends.last_mut() {
            Some((side, sent)) if *side == from_client => sent.extend_from_slice(&bytes),
            _ => block.sends.push((from_client, bytes)),
        }
    }
    assert!(blocks.len() >= 20, "SPEC.md §12 holds the worked examples");
    blocks
}

/// Every §12 example: transcripts (illustrative ones too) as TCP connections
/// to port 9999, datagram blocks as a request and its reply.
fn spec_scenario() -> Scenario {
    let mut scenario = Scenario::new();
    for block in spec_blocks() {
        match block.kind.as_str() {
            "upcase-transcript" | "upcase-transcript-illustrative" => {
                let mut sends = block.sends;
                if !sends[0].0 {
                    // "after the preface exchange (not shown)"
                    sends.insert(0, (false, PREFACE.to_vec()));
                    sends.insert(0, (true, PREFACE.to_vec()));
                }
                scenario.tcp(SERVER_PORT, &sends, true);
            }
            "upcase-datagram" => {
                let reply = block.sends.get(1).map(|(_, bytes)| bytes.as_slice());
                scenario.datagrams(SERVER_PORT, &block.sends[0].1, reply);
            }
            other => panic!("unknown SPEC.md block kind {other}"),
        }
    }
    scenario
}

#[test]
fn spec_examples_decode_field_by_field() {
    if !have_tshark() {
        return;
    }
    let scenario = spec_scenario();
    scenario.check("spec", &[]);
    // Twice, as Wireshark's window reads a file: state from the first pass.
    scenario.check("spec-two-pass", &["-2"]);
    let infos: Vec<String> = scenario
        .expect
        .values()
        .flat_map(|e| e.info.clone())
        .collect();
    // The Info column reads as the issue asks.
    for wanted in [
        "TEXT 5 B \"hello\"",
        "TEXT 5 B \"stra\u{fffd}\" [MORE]",
        "ERROR INVALID_UTF8 \"invalid UTF-8 at byte 7 of the m…\"",
        "PING 4 B",
        "BYE \"done\"",
        "Raw client to server 2 B \"h\u{fffd}\"",
    ] {
        assert!(infos.iter().any(|i| i == wanted), "no Info {wanted:?}");
    }
    if std::env::var_os("UPCASE_WRITE_EXAMPLE").is_some() {
        write_example(&scenario);
    }
}

fn example_path() -> PathBuf {
    repo().join("contrib/wireshark/example.pcapng")
}

fn write_example(scenario: &Scenario) {
    let pcap = scratch("example.pcap");
    scenario.pcap.write(pcap.path());
    let output = child::run(
        "editcap (wireshark-common)",
        Command::new("editcap")
            .args(["-F", "pcapng"])
            .arg(pcap.path())
            .arg(example_path()),
        b"",
    );
    assert!(output.status.success(), "editcap: {output:?}");
}

#[test]
fn example_capture_is_the_generated_spec_capture() {
    if !have_tshark() {
        return;
    }
    let example = example_path();
    let size = std::fs::metadata(&example).unwrap().len();
    assert!(size < 50_000, "example.pcapng stays small: {size} bytes");
    let generated = scratch("spec-for-example.pcap");
    spec_scenario().pcap.write(generated.path());
    let from_example = decode(&example, &[]);
    let from_generator = decode(generated.path(), &[]);
    assert!(
        from_example == from_generator,
        "contrib/wireshark/example.pcapng differs from the §12 capture; \
         rewrite it: UPCASE_WRITE_EXAMPLE=1 cargo test -p upcase-cli --test wireshark spec"
    );
}

// ---------------------------------------------------------------------------
// tests/vectors/frames.json

#[derive(Deserialize)]
struct FramesFile {
    frames: Vec<FrameVector>,
    decode_errors: Vec<DecodeError>,
}

#[derive(Deserialize)]
struct FrameVector {
    name: String,
    hex: String,
    src: String,
    dst: String,
    #[serde(rename = "type")]
    frame_type: u8,
    flags: u8,
    data_hex: String,
}

#[derive(Deserialize)]
struct DecodeError {
    hex: String,
}

fn vector_address(text: &str) -> Vec<u8> {
    if text == "unspecified" {
        return vec![0; 18];
    }
    let addr: SocketAddrV6 = text.parse().expect("[ip]:port");
    let mut bytes = addr.ip().octets().to_vec();
    bytes.extend_from_slice(&addr.port().to_be_bytes());
    bytes
}

/// The vector frames, each checked against its own field values: the
/// expected fields above read the same bytes at SPEC.md §3.1's offsets.
fn vector_frames() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let path = repo().join("tests/vectors/frames.json");
    let file: FramesFile = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let frames = file
        .frames
        .iter()
        .map(|v| {
            let bytes = unhex(&v.hex);
            let data = unhex(&v.data_hex);
            assert_eq!(bytes[0..18], vector_address(&v.src)[..], "{}", v.name);
            assert_eq!(bytes[18..36], vector_address(&v.dst)[..], "{}", v.name);
            assert_eq!(
                (bytes[36], bytes[37]),
                (v.frame_type, v.flags),
                "{}",
                v.name
            );
            assert_eq!(
                bytes[38..42],
                (data.len() as u32).to_be_bytes(),
                "{}",
                v.name
            );
            assert_eq!(bytes[42..], data[..], "{}", v.name);
            bytes
        })
        .collect();
    let errors = file.decode_errors.iter().map(|v| unhex(&v.hex)).collect();
    (frames, errors)
}

#[test]
fn vector_frames_decode_over_tcp_and_udp() {
    if !have_tshark() {
        return;
    }
    let (frames, decode_errors) = vector_frames();
    let mut scenario = Scenario::new();
    let all: Vec<u8> = frames.concat();
    let reply = [PREFACE.as_slice(), &frames[0]].concat();
    // All frames in one send (several segments: one frame is over 64 KiB).
    let one_send = [(true, [PREFACE.as_slice(), &all].concat()), (false, reply)];
    scenario.tcp(SERVER_PORT, &one_send, true);
    // The same on a port of no meaning: the heuristic finds the preface.
    scenario.tcp(47000, &one_send, true);
    // One segment per frame.
    let mut per_frame = vec![(true, PREFACE.to_vec()), (false, PREFACE.to_vec())];
    per_frame.extend(frames.iter().map(|f| (true, f.clone())));
    scenario.tcp(SERVER_PORT, &per_frame, true);
    // Each frame in a datagram, on 9999 and (heuristic) on 47001.
    for frame in frames.iter().filter(|f| f.len() <= 65_000) {
        let datagram = [PREFACE.as_slice(), frame].concat();
        scenario.datagrams(SERVER_PORT, &datagram, None);
        scenario.datagrams(47001, &datagram, None);
    }
    // Truncated and over-limit frames (decode_errors) in datagrams.
    for bytes in &decode_errors {
        scenario.datagrams(SERVER_PORT, &[PREFACE.as_slice(), bytes].concat(), None);
    }
    // A frame with bytes after it in the datagram.
    let two = [PREFACE.as_slice(), &frames[1], &frames[1]].concat();
    scenario.datagrams(SERVER_PORT, &two, None);
    // Not UPCASE/1 off port 9999: plain text, and c0 then a differing byte.
    let text = [(true, b"hello\n".to_vec()), (false, b"HELLO\n".to_vec())];
    scenario.tcp(47002, &text, false);
    let near_magic = [(true, vec![0xc0]), (true, b"up\n".to_vec())];
    scenario.tcp(47002, &near_magic, false);
    let client = SocketAddrV4::new(LOCALHOST, scenario.client_port());
    let server = SocketAddrV4::new(LOCALHOST, 47003);
    scenario.pcap.udp(client, server, b"hello");
    scenario.pcap.udp(server, client, b"HELLO");
    scenario.check("vectors", &[]);
    // Twice, as Wireshark's window reads a file: state from the first pass.
    scenario.check("vectors-two-pass", &["-2"]);
}

#[test]
fn a_frame_split_at_every_offset_still_decodes() {
    if !have_tshark() {
        return;
    }
    let (frames, _) = vector_frames();
    let mut scenario = Scenario::new();
    // The preface and a frame, as the client's first bytes, cut in two
    // anywhere (inside the magic too), on 9999 and on a heuristic port.
    let first = [PREFACE.as_slice(), &frames[0]].concat();
    for port in [SERVER_PORT, 47000] {
        for cut in 1..first.len() {
            let sends = [
                (true, first[..cut].to_vec()),
                (true, first[cut..].to_vec()),
                (false, PREFACE.to_vec()),
            ];
            scenario.tcp(port, &sends, true);
        }
    }
    // Every vector frame of up to 300 bytes, cut in two after the preface.
    for frame in frames.iter().filter(|f| f.len() <= 300) {
        for cut in 1..frame.len() {
            let sends = [
                (true, PREFACE.to_vec()),
                (false, PREFACE.to_vec()),
                (true, frame[..cut].to_vec()),
                (true, frame[cut..].to_vec()),
            ];
            scenario.tcp(SERVER_PORT, &sends, true);
        }
    }
    scenario.check("split", &[]);
    // Twice, as Wireshark's window reads a file: state from the first pass.
    scenario.check("split-two-pass", &["-2"]);
}

// ---------------------------------------------------------------------------
// A live capture: tcpdump on the loopback while `upcase conform` runs
// against `upcase serve`.

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

fn upcase() -> Command {
    Command::new(env!("CARGO_BIN_EXE_upcase"))
}

/// `upcase serve` on a free port, with a short idle timeout and a
/// connection limit so that conform covers IDLE_TIMEOUT and BUSY too.
fn serve() -> (Process, u16) {
    let mut server = Process::spawn(
        "upcase serve",
        upcase()
            .args(["serve", "--listen", "127.0.0.1:0", "-q"])
            .args([
                "--idle-timeout",
                "1",
                "--max-connections",
                "4",
                "--linger",
                "1",
            ])
            .args(["--max-frame", "65536"]),
    );
    let line = server.stdout_line();
    let port = line
        .split(", ")
        .next()
        .and_then(|tcp| tcp.rsplit(':').next())
        .and_then(|port| port.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected startup line {line:?}"));
    (server, port)
}

/// tcpdump on `lo` for `port`, writing `path`; returns once it says it
/// listens (its stderr's "listening on lo", within [`READY`]).
fn tcpdump(port: u16, path: &Path) -> Process {
    let mut dump = Process::spawn(
        "tcpdump",
        Command::new("tcpdump")
            .args([
                "-i", "lo", "-U", "-Z", "root", "-B", "16384", "-s", "0", "-w",
            ])
            .arg(path)
            .args(["host", "127.0.0.1", "and", "port", &port.to_string()]),
    );
    let line = dump.stderr_line();
    assert!(line.contains("listening on lo"), "tcpdump: {line}");
    dump
}

fn conform(port: u16, udp: bool) {
    let mut command = upcase();
    command
        .args(["conform", &format!("127.0.0.1:{port}")])
        .args(["--idle-timeout", "1", "--max-connections", "4"])
        .args(["--max-frame", "65536"]);
    if udp {
        command.arg("--udp");
    }
    let output = child::run("upcase conform", &mut command, b"");
    // The traffic is what this test needs; whether our server passes is
    // tests/conform.rs's business (under load its BUSY case once failed
    // here: the 4th of 4 allowed connections got BUSY). A suite that could
    // not run at all leaves frame types unseen, which fails below.
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        println!("note: upcase conform reported failures:");
        for line in stdout.lines().filter(|l| l.starts_with('✘')) {
            println!("  {line}");
        }
    }
}

#[test]
fn live_capture_of_conform_decodes_cleanly() {
    if !have_tshark() {
        return;
    }
    if !tool_runs("tcpdump", "--version") {
        println!("skipped: tcpdump not found");
        return;
    }
    if !is_root() {
        println!("skipped: capturing on lo needs root");
        return;
    }
    let started = Instant::now();
    let (server, port) = serve();
    let capture = scratch("live.pcap");
    let mut dump = tcpdump(port, capture.path());
    conform(port, false);
    conform(port, true);
    std::thread::sleep(Duration::from_millis(300));
    // SIGINT: tcpdump writes out what it holds and exits.
    dump.signal("INT");
    let stopped = dump.wait(READY);
    assert!(stopped.success(), "tcpdump exited with {stopped}");
    drop(dump);
    drop(server);

    // Decode As for the server's port (raw connections have no magic); the
    // dissector's limit set to the server's.
    let tcp = format!("tcp.port=={port},upcase");
    let udp = format!("udp.port=={port},upcase");
    let options = ["-d", &tcp, "-d", &udp, "-o", "upcase.limit:65536"];
    let packets = decode(capture.path(), &options);
    let two_passes = decode(capture.path(), &[&options[..], &["-2"]].concat());
    let differing = (0..packets.len())
        .filter(|&i| packets.get(i) != two_passes.get(i))
        .collect::<Vec<_>>();
    assert!(
        differing.is_empty(),
        "{} packets decode differently in two passes (as in Wireshark's window), \
         the first: {:?}",
        differing.len(),
        differing
            .first()
            .map(|&i| (i + 1, &packets[i], &two_passes[i]))
    );
    assert!(packets.len() > 1000, "{} packets captured", packets.len());

    let mut seen: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for packet in &packets {
        for message in &packet.experts {
            assert!(
                !message.starts_with("Lua Error") && !message.contains("Malformed Packet"),
                "the dissector failed: {message}"
            );
        }
        for field in [
            "upcase.type",
            "upcase.error.code",
            "upcase.raw.direction",
            "upcase.version",
        ] {
            for value in packet.fields.get(field).into_iter().flatten() {
                let values = seen.entry(field).or_default();
                if !values.contains(value) {
                    values.push(value.clone());
                }
            }
        }
    }
    for (field, wanted) in [
        (
            "upcase.type",
            &["0x01", "0x02", "0x03", "0x04", "0x05", "0x06", "0x07"][..],
        ),
        (
            "upcase.error.code",
            &["1", "2", "3", "4", "5", "6", "7", "8", "9"],
        ),
        (
            "upcase.raw.direction",
            &["client to server", "server to client"],
        ),
        ("upcase.version", &["1", "2"]),
    ] {
        for value in wanted {
            assert!(
                seen.get(field)
                    .is_some_and(|v| v.iter().any(|s| s == value)),
                "the capture shows {field} = {value}; seen {:?}",
                seen.get(field)
            );
        }
    }
    println!(
        "live capture: {} packets decoded in {:.1} s",
        packets.len(),
        started.elapsed().as_secs_f64()
    );
}
