--[[
UPCASE/1 dissector for Wireshark and tshark 4.0 or later (SPEC.md).

Load it for one run:

    tshark -X lua_script:contrib/wireshark/upcase.lua -r capture.pcap
    wireshark -X lua_script:contrib/wireshark/upcase.lua capture.pcap

or copy it into the personal Lua plugins folder (Help > About Wireshark >
Folders > Personal Lua Plugins, usually ~/.local/lib/wireshark/plugins/).
Tested by tests/wireshark.rs; contrib/wireshark/example.pcapng holds every
worked example of SPEC.md §12.

How it finds UPCASE/1
---------------------
* TCP and UDP port 9999 are decoded as UPCASE/1. Decode As picks any other
  port (tshark: `-d tcp.port==4000,upcase -d udp.port==4000,upcase`).
* On any port, a heuristic claims a TCP connection or a UDP datagram that
  starts with the magic c0 55 50 43 41 53 45 ("\xc0UPCASE", §2.1). A raw
  mode connection (plain text, §7) has no magic: it is decoded on 9999 or
  with Decode As only.

On TCP the client's first bytes decide the mode, as the server does (§2.1):
the preface makes the connection framed, a byte that differs from the magic
makes it raw. The client is the side that sends first, or the side that is
not on port 9999. Frames are reassembled across segments, and one segment
may hold many frames: a frame shows in the packet that completes it. State
is kept per pair of addresses and ports; a capture that reuses both for a
second connection continues the first one's state.

What tshark prints
------------------
The Protocol column is UPCASE; the Info column lists the packet's PDUs,
separated by ", " (tshark -r example.pcapng):

    4  127.0.0.1 → 127.0.0.1  UPCASE  Preface v1
    6  127.0.0.1 → 127.0.0.1  UPCASE  TEXT 5 B "hello"
   16  127.0.0.1 → 127.0.0.1  UPCASE  TEXT 5 B "stra�" [MORE]
   40  127.0.0.1 → 127.0.0.1  UPCASE  BYTES 5 B [MORE]
   52  127.0.0.1 → 127.0.0.1  UPCASE  PING 4 B
   62  127.0.0.1 → 127.0.0.1  UPCASE  BYE "done"
  108  127.0.0.1 → 127.0.0.1  UPCASE  PING [MORE]
  117  127.0.0.1 → 127.0.0.1  UPCASE  Preface v1, ERROR UNSUPPORTED_VERSION "unsupported version 2; this serv…"
  126  127.0.0.1 → 127.0.0.1  UPCASE  TEXT 1048577 B (over the limit)
  148  127.0.0.1 → 127.0.0.1  UPCASE  Type 0x07 3 B
  200  127.0.0.1 → 127.0.0.1  UPCASE  Raw server to client 4 B "�UP\n"

* TEXT: size and text; BYTES, PING, PONG and unknown types: the size when
  not empty; BYE: the reason when there is one; ERROR: the code's name
  (SPEC.md §6.2; "code 77" for others) and the message, or "(no code)".
* Quoted text is the data decoded as UTF-8, each maximal ill-formed subpart
  (Rust's String::from_utf8_lossy) shown as U+FFFD; \ " and control
  characters escaped (\\ \" \n \r \t, others \xNN); cut after 32
  characters with "…".
* " [MORE]" ends a frame whose MORE flag is set, whatever its type.
* A length over the receive limit (preference upcase.limit, default
  1,048,576) shows "(over the limit)": the frame is its header alone, as a
  receiver rejects it before any data (§3.4).
* A UDP datagram shows its preface and frame, "Truncated frame" when it ends
  inside the header, and "N B after the frame" for extra bytes.

`tshark -V` shows one "UPCASE/1" tree per PDU:

    UPCASE/1, ERROR MALFORMED "reserved flag bits set"
        Source: 127.0.0.1:9999
            Source address: 127.0.0.1 (::ffff:127.0.0.1)
            Source IPv4 address: 127.0.0.1
            Source port: 9999
        Destination: 127.0.0.1:50000
            ...
        Type: ERROR (0x06)
        Flags: 0x00
            .... ...0 = MORE: clear
            0000 000. = Reserved: 0x00
        Length: 24
        Data: 0001726573657276656420666c6167206269747320736574
        Error code: MALFORMED (1)
        Error message: reserved flag bits set

Fields (display filters, `tshark -T fields -e`):

    upcase.magic, upcase.version          the preface
    upcase.src.addr, upcase.src.port      frame source (bytes 0..18): an IPv6
    upcase.dst.addr, upcase.dst.port      field, shown as IPv4 when it is
                                          IPv4-mapped (::ffff:a.b.c.d)
    upcase.src.ipv4, upcase.dst.ipv4      a.b.c.d of an IPv4-mapped address,
                                          for filters such as
                                          upcase.src.ipv4 == 127.0.0.1
    upcase.type                           with names TEXT .. ERROR
    upcase.flags, upcase.flags.more       the flags byte; bit 0
    upcase.flags.reserved                 bits 1-7 (as flags >> 1)
    upcase.length, upcase.data            data: absent when empty
    upcase.text                           TEXT data as text
    upcase.error.code, upcase.error.message
    upcase.bye.reason                     BYE data as text, when present
    upcase.raw.direction                  "client to server" or
                                          "server to client"
    upcase.raw.data, upcase.raw.text      raw mode bytes, as text

Text fields are the Info text unescaped and uncut, except that Wireshark
ends them at a NUL byte.

Expert info (`tshark -z expert`; each one's message cites SPEC.md):

    upcase.expert.reserved_flags       reserved flag bits set (§3.3)
    upcase.expert.more_on_control      MORE on a type other than TEXT/BYTES
    upcase.expert.unsupported_version  a preface version other than 1
    upcase.expert.unknown_type         a type not in §4.1
    upcase.expert.too_large            a length over the receive limit
    upcase.expert.truncated            a datagram ends inside its frame
    upcase.expert.error_without_code   ERROR data shorter than 2 bytes
    upcase.expert.trailing_bytes       bytes after the frame in a datagram
]]

local MAGIC = "\xc0UPCASE"
local MAGIC_LEN = 7
local PREFACE_LEN = 8
local HEADER_LEN = 42
local DEFAULT_PORT = 9999
local DEFAULT_LIMIT = 1048576
local INFO_TEXT_CHARS = 32
local REPLACEMENT = "\xef\xbf\xbd"

local upcase = Proto("upcase", "UPCASE/1")

local TYPE_NAMES = {
    [1] = "TEXT", [2] = "BYTES", [3] = "PING", [4] = "PONG", [5] = "BYE", [6] = "ERROR",
}
local TEXT, BYTES, BYE, ERROR = 1, 2, 5, 6

local ERROR_NAMES = {
    [1] = "MALFORMED", [2] = "UNSUPPORTED_VERSION", [3] = "FRAME_TOO_LARGE",
    [4] = "INVALID_UTF8", [5] = "UNKNOWN_TYPE", [6] = "UNEXPECTED_TYPE",
    [7] = "TYPE_MISMATCH", [8] = "IDLE_TIMEOUT", [9] = "BUSY",
}

local pf = {
    magic = ProtoField.bytes("upcase.magic", "Magic"),
    version = ProtoField.uint8("upcase.version", "Version", base.DEC),
    src_addr = ProtoField.ipv6("upcase.src.addr", "Source address"),
    src_ipv4 = ProtoField.ipv4("upcase.src.ipv4", "Source IPv4 address"),
    src_port = ProtoField.uint16("upcase.src.port", "Source port", base.DEC),
    dst_addr = ProtoField.ipv6("upcase.dst.addr", "Destination address"),
    dst_ipv4 = ProtoField.ipv4("upcase.dst.ipv4", "Destination IPv4 address"),
    dst_port = ProtoField.uint16("upcase.dst.port", "Destination port", base.DEC),
    type = ProtoField.uint8("upcase.type", "Type", base.HEX, TYPE_NAMES),
    flags = ProtoField.uint8("upcase.flags", "Flags", base.HEX),
    more = ProtoField.bool("upcase.flags.more", "MORE", 8,
        { "set (the message continues)", "clear" }, 0x01),
    reserved = ProtoField.uint8("upcase.flags.reserved", "Reserved", base.HEX, nil, 0xfe),
    length = ProtoField.uint32("upcase.length", "Length", base.DEC),
    data = ProtoField.bytes("upcase.data", "Data"),
    text = ProtoField.string("upcase.text", "Text", base.UNICODE),
    error_code = ProtoField.uint16("upcase.error.code", "Error code", base.DEC, ERROR_NAMES),
    error_message = ProtoField.string("upcase.error.message", "Error message", base.UNICODE),
    bye_reason = ProtoField.string("upcase.bye.reason", "Reason", base.UNICODE),
    raw_direction = ProtoField.string("upcase.raw.direction", "Direction"),
    raw_data = ProtoField.bytes("upcase.raw.data", "Raw data"),
    raw_text = ProtoField.string("upcase.raw.text", "Raw text", base.UNICODE),
}
upcase.fields = {
    pf.magic, pf.version, pf.src_addr, pf.src_ipv4, pf.src_port, pf.dst_addr, pf.dst_ipv4,
    pf.dst_port, pf.type, pf.flags, pf.more, pf.reserved, pf.length, pf.data, pf.text,
    pf.error_code, pf.error_message, pf.bye_reason, pf.raw_direction, pf.raw_data, pf.raw_text,
}

local function new_expert(abbrev, text, group, severity)
    return ProtoExpert.new("upcase.expert." .. abbrev, text, group, severity)
end
local ex = {
    reserved_flags = new_expert("reserved_flags", "Reserved flag bits set",
        expert.group.PROTOCOL, expert.severity.WARN),
    more_on_control = new_expert("more_on_control", "MORE set on a type other than TEXT or BYTES",
        expert.group.PROTOCOL, expert.severity.WARN),
    unsupported_version = new_expert("unsupported_version", "Unsupported version",
        expert.group.PROTOCOL, expert.severity.WARN),
    unknown_type = new_expert("unknown_type", "Unknown frame type",
        expert.group.PROTOCOL, expert.severity.WARN),
    too_large = new_expert("too_large", "Length over the receive limit",
        expert.group.PROTOCOL, expert.severity.WARN),
    truncated = new_expert("truncated", "Truncated frame",
        expert.group.MALFORMED, expert.severity.ERROR),
    error_without_code = new_expert("error_without_code", "ERROR data shorter than 2 bytes",
        expert.group.MALFORMED, expert.severity.ERROR),
    trailing_bytes = new_expert("trailing_bytes", "Bytes after the frame in the datagram",
        expert.group.MALFORMED, expert.severity.ERROR),
}
upcase.experts = {
    ex.reserved_flags, ex.more_on_control, ex.unsupported_version, ex.unknown_type,
    ex.too_large, ex.truncated, ex.error_without_code, ex.trailing_bytes,
}

upcase.prefs.limit = Pref.uint("Receive limit (bytes)", DEFAULT_LIMIT,
    "A frame whose length is over this is shown as its header alone: a receiver rejects it "
    .. "(FRAME_TOO_LARGE) before any data is sent")

-- Text ---------------------------------------------------------------------

-- The bytes decoded as UTF-8, each maximal ill-formed subpart (Unicode §3.9,
-- Table 3-7, as Rust's String::from_utf8_lossy) replaced by U+FFFD. Done
-- here rather than by Wireshark so that NUL and the replacement rule are the
-- same on every version.
local function lossy_utf8(bytes)
    local out, i, n = {}, 1, #bytes
    while i <= n do
        local b = bytes:byte(i)
        local need, lo, hi = 0, 0x80, 0xbf
        if b < 0x80 then
            need = -1
        elseif b >= 0xc2 and b <= 0xdf then
            need = 1
        elseif b == 0xe0 then
            need, lo = 2, 0xa0
        elseif b == 0xed then
            need, hi = 2, 0x9f
        elseif b >= 0xe1 and b <= 0xef then
            need = 2
        elseif b == 0xf0 then
            need, lo = 3, 0x90
        elseif b >= 0xf1 and b <= 0xf3 then
            need = 3
        elseif b == 0xf4 then
            need, hi = 3, 0x8f
        end
        if need == -1 then
            out[#out + 1] = string.char(b)
            i = i + 1
        elseif need == 0 then
            out[#out + 1] = REPLACEMENT
            i = i + 1
        else
            local j, got = i + 1, 0
            while got < need and j <= n do
                local c = bytes:byte(j)
                if got > 0 then
                    lo, hi = 0x80, 0xbf
                end
                if c < lo or c > hi then
                    break
                end
                got, j = got + 1, j + 1
            end
            out[#out + 1] = (got == need) and bytes:sub(i, j - 1) or REPLACEMENT
            i = j
        end
    end
    return table.concat(out)
end

local ESCAPES = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

-- Valid UTF-8 text in double quotes for the Info column: escaped, at most
-- INFO_TEXT_CHARS characters, then "…".
local function quoted(text)
    local out, chars, i, n = { '"' }, 0, 1, #text
    while i <= n do
        if chars == INFO_TEXT_CHARS then
            out[#out + 1] = "…"
            break
        end
        local b = text:byte(i)
        local width = (b < 0x80 and 1) or (b < 0xe0 and 2) or (b < 0xf0 and 3) or 4
        local ch = text:sub(i, i + width - 1)
        if ESCAPES[ch] then
            ch = ESCAPES[ch]
        elseif b < 0x20 or b == 0x7f then
            ch = string.format("\\x%02x", b)
        end
        out[#out + 1] = ch
        chars, i = chars + 1, i + width
    end
    out[#out + 1] = '"'
    return table.concat(out)
end

-- Per-conversation state ---------------------------------------------------

-- key ("tcp <endpoint> <endpoint>") -> { client = endpoint,
--   mode = nil | "framed" | "raw", heuristic = bool,
--   sides = { [endpoint] = { at_start = bool, start_key = string } } }
-- Keyed by addresses and ports, not tcp.stream: field values are not there
-- on a first pass without a tree (tshark -2, the GUI), and keys must match
-- on every pass.
local conversations = {}

function upcase.init()
    conversations = {}
end

local function endpoint(address, port)
    return tostring(address) .. " " .. port
end

local function conversation_key(pinfo, transport)
    local a, b = endpoint(pinfo.src, pinfo.src_port), endpoint(pinfo.dst, pinfo.dst_port)
    if b < a then
        a, b = b, a
    end
    return transport .. " " .. a .. " " .. b
end

local function conversation(pinfo, transport)
    local key = conversation_key(pinfo, transport)
    local conv = conversations[key]
    if conv == nil then
        conv = { sides = {} }
        -- The client speaks first (§2.1) unless we can tell the server by its port.
        if pinfo.src_port == DEFAULT_PORT and pinfo.dst_port ~= DEFAULT_PORT then
            conv.client = endpoint(pinfo.dst, pinfo.dst_port)
        else
            conv.client = endpoint(pinfo.src, pinfo.src_port)
        end
        conversations[key] = conv
    end
    return conv, key
end

local function from_client(pinfo, conv)
    return endpoint(pinfo.src, pinfo.src_port) == conv.client
end

-- The Protocol column says UPCASE once the first PDU of a packet is shown;
-- later PDUs of the same packet (another call for the same frame) append.
local function add_info(pinfo, info)
    if tostring(pinfo.cols.protocol) ~= "UPCASE" then
        pinfo.cols.protocol = "UPCASE"
        pinfo.cols.info = info
    else
        pinfo.cols.info:append(", " .. info)
    end
end

-- PDUs ---------------------------------------------------------------------

local function ip_is_v4_mapped(range)
    return range:range(0, 10):bytes():tohex() == "00000000000000000000"
        and range:range(10, 2):uint() == 0xffff
end

-- One 18-byte address: a labelled subtree with the IPv6 address (shown as
-- IPv4 when it is IPv4-mapped, which then is also an IPv4 field) and the port.
local function add_address(tree, range, label, addr_field, ipv4_field, port_field)
    local ip, port = range:range(0, 16), range:range(16, 2)
    local mapped = ip_is_v4_mapped(ip)
    local shown
    if mapped then
        shown = tostring(ip:range(12, 4):ipv4())
    else
        shown = tostring(ip:ipv6())
    end
    local text
    if range:bytes():tohex() == string.rep("00", 18) then
        text = "unspecified"
    elseif mapped then
        text = shown .. ":" .. port:uint()
    else
        text = "[" .. shown .. "]:" .. port:uint()
    end
    local item = tree:add(range, label .. ": " .. text)
    local addr_item = item:add(addr_field, ip)
    if mapped then
        addr_item:set_text(label .. " address: " .. shown .. " (" .. tostring(ip:ipv6()) .. ")")
        item:add(ipv4_field, ip:range(12, 4))
    end
    item:add(port_field, port)
end

-- Adds the preface at `range` (8 bytes); returns its Info text.
local function dissect_preface(range, tree)
    local version = range:range(7, 1):uint()
    local item = tree:add(upcase, range)
    item:append_text(", Preface v" .. version)
    item:add(pf.magic, range:range(0, MAGIC_LEN))
    local version_item = item:add(pf.version, range:range(7, 1))
    if version ~= 1 then
        version_item:add_proto_expert_info(ex.unsupported_version,
            "Unsupported version " .. version .. "; UPCASE/1 is version 1 (SPEC.md §2.3)")
    end
    return "Preface v" .. version
end

-- Adds the frame that starts at `offset` of `tvb`, of which `available`
-- bytes are there (a datagram may end early); returns its Info text and the
-- number of bytes it takes (a frame over the limit is its header alone).
local function dissect_frame(tvb, offset, available, tree)
    local item = tree:add(upcase, tvb:range(offset, math.min(available, HEADER_LEN)))
    if available < HEADER_LEN then
        item:append_text(", truncated frame")
        item:add_proto_expert_info(ex.truncated, "Truncated frame: " .. available
            .. " of the 42 header bytes (SPEC.md §3.1)")
        return "Truncated frame", available
    end
    local header = tvb:range(offset, HEADER_LEN)
    add_address(item, header:range(0, 18), "Source", pf.src_addr, pf.src_ipv4, pf.src_port)
    add_address(item, header:range(18, 18), "Destination", pf.dst_addr, pf.dst_ipv4, pf.dst_port)

    local frame_type = header:range(36, 1):uint()
    local type_name = TYPE_NAMES[frame_type]
    local type_item = item:add(pf.type, header:range(36, 1))
    if type_name == nil then
        type_item:add_proto_expert_info(ex.unknown_type,
            string.format("Unknown frame type 0x%02x (SPEC.md §4.1)", frame_type))
    end

    local flags = header:range(37, 1):uint()
    local more = flags % 2 == 1
    local flags_item = item:add(pf.flags, header:range(37, 1))
    flags_item:add(pf.more, header:range(37, 1))
    flags_item:add(pf.reserved, header:range(37, 1))
    if flags >= 2 then
        flags_item:add_proto_expert_info(ex.reserved_flags,
            string.format("Reserved flag bits 0x%02x set (SPEC.md §3.3)", flags - flags % 2))
    end
    if more and frame_type ~= TEXT and frame_type ~= BYTES then
        flags_item:add_proto_expert_info(ex.more_on_control,
            "MORE set on a frame that is not TEXT or BYTES (SPEC.md §3.3)")
    end

    local length = header:range(38, 4):uint()
    local length_item = item:add(pf.length, header:range(38, 4))
    local info = type_name or string.format("Type 0x%02x", frame_type)
    local taken = HEADER_LEN
    if length > upcase.prefs.limit then
        length_item:add_proto_expert_info(ex.too_large, "Length " .. length
            .. " is over the receive limit of " .. upcase.prefs.limit
            .. " bytes (SPEC.md §3.4): a receiver rejects the header and awaits no data")
        info = info .. " " .. length .. " B (over the limit)"
    else
        local present = math.min(length, available - HEADER_LEN)
        taken = HEADER_LEN + present
        local data = tvb:range(offset + HEADER_LEN, present)
        if present > 0 then
            item:set_len(taken)
            item:add(pf.data, data)
        end
        if present < length then
            item:add_proto_expert_info(ex.truncated, "Truncated frame: " .. present
                .. " of " .. length .. " data bytes (SPEC.md §3.1)")
        end
        local bytes = present > 0 and data:raw() or ""
        if frame_type == TEXT then
            local text = lossy_utf8(bytes)
            item:add(pf.text, data, text)
            info = info .. " " .. length .. " B " .. quoted(text)
        elseif frame_type == ERROR then
            if present < 2 then
                item:add_proto_expert_info(ex.error_without_code,
                    "ERROR data shorter than 2 bytes: no error code (SPEC.md §6.6)")
                info = info .. " (no code)"
            else
                local code = data:range(0, 2):uint()
                item:add(pf.error_code, data:range(0, 2))
                local message = lossy_utf8(bytes:sub(3))
                local message_range = tvb:range(offset + HEADER_LEN + 2, present - 2)
                item:add(pf.error_message, message_range, message)
                info = info .. " " .. (ERROR_NAMES[code] or ("code " .. code)) .. " " .. quoted(message)
            end
        elseif frame_type == BYE then
            if present > 0 then
                local reason = lossy_utf8(bytes)
                item:add(pf.bye_reason, data, reason)
                info = info .. " " .. quoted(reason)
            end
        elseif length > 0 then
            info = info .. " " .. length .. " B"
        end
    end
    if more then
        info = info .. " [MORE]"
    end
    item:append_text(", " .. info)
    return info, taken
end

-- Raw mode: the whole range as text, with its direction.
local function dissect_raw(range, tree, client_to_server)
    local direction = client_to_server and "client to server" or "server to client"
    local text = lossy_utf8(range:raw())
    local info = "Raw " .. direction .. " " .. range:len() .. " B " .. quoted(text)
    local item = tree:add(upcase, range)
    item:append_text(", " .. info)
    item:add(pf.raw_direction, range, direction)
    item:add(pf.raw_data, range)
    item:add(pf.raw_text, range, text)
    return info
end

-- TCP ----------------------------------------------------------------------

-- How many of the first bytes match the magic; "raw", "framed" or "more".
local function detect_mode(tvb)
    local n = math.min(tvb:len(), MAGIC_LEN)
    for i = 1, n do
        if tvb:range(i - 1, 1):uint() ~= MAGIC:byte(i) then
            return "raw"
        end
    end
    return (tvb:len() >= PREFACE_LEN) and "framed" or "more"
end

local function need_more(pinfo, offset, bytes)
    pinfo.desegment_offset = offset
    pinfo.desegment_len = bytes
end

-- Whether this call's tvb starts at the first byte the side sent. On the
-- first pass calls come in stream order; later passes (the GUI) repeat them,
-- so the call that read the preface is remembered by frame number and length.
local function at_start(pinfo, side, tvb)
    if not pinfo.visited then
        return side.at_start ~= false
    end
    return side.start_key == pinfo.number .. ":" .. tvb:len()
end

local function dissect_tcp(tvb, pinfo, tree, conv)
    local len = tvb:len()
    local client = from_client(pinfo, conv)
    if conv.mode == nil then
        local mode = detect_mode(tvb)
        if mode == "more" then
            -- Every byte may decide (§2.1): look again with the next segment.
            need_more(pinfo, 0, DESEGMENT_ONE_MORE_SEGMENT)
            return len
        end
        if mode == "raw" and conv.heuristic then
            return 0 -- found by the magic, and it is not there: not UPCASE/1
        end
        conv.mode = mode
    end
    if conv.mode == "raw" then
        add_info(pinfo, dissect_raw(tvb:range(), tree, client))
        return len
    end

    local side_key = endpoint(pinfo.src, pinfo.src_port)
    local side = conv.sides[side_key]
    if side == nil then
        side = {}
        conv.sides[side_key] = side
    end
    local offset = 0
    if at_start(pinfo, side, tvb) then
        if len < PREFACE_LEN then
            need_more(pinfo, 0, PREFACE_LEN - len)
            return len
        end
        add_info(pinfo, dissect_preface(tvb:range(0, PREFACE_LEN), tree))
        if not pinfo.visited then
            side.at_start = false
            side.start_key = pinfo.number .. ":" .. len
        end
        offset = PREFACE_LEN
    end
    while offset < len do
        local remaining = len - offset
        if remaining < HEADER_LEN then
            -- Not an exact count: TCP would hand over the header alone and
            -- the data would need a second request inside the same segment,
            -- which later passes (the GUI, tshark -2) do not replay.
            need_more(pinfo, offset, DESEGMENT_ONE_MORE_SEGMENT)
            return len
        end
        local length = tvb:range(offset + 38, 4):uint()
        local frame_len = HEADER_LEN
        if length <= upcase.prefs.limit then
            frame_len = HEADER_LEN + length
        end
        if remaining < frame_len then
            need_more(pinfo, offset, frame_len - remaining)
            return len
        end
        local info = dissect_frame(tvb, offset, frame_len, tree)
        add_info(pinfo, info)
        offset = offset + frame_len
    end
    return len
end

-- UDP ----------------------------------------------------------------------

local function is_framed_datagram(tvb)
    return tvb:len() >= PREFACE_LEN and tvb:raw(0, MAGIC_LEN) == MAGIC
end

local function dissect_udp(tvb, pinfo, tree, conv)
    local len = tvb:len()
    if not is_framed_datagram(tvb) then
        add_info(pinfo, dissect_raw(tvb:range(), tree, from_client(pinfo, conv)))
        return len
    end
    local infos = { dissect_preface(tvb:range(0, PREFACE_LEN), tree) }
    local info, taken = dissect_frame(tvb, PREFACE_LEN, len - PREFACE_LEN, tree)
    infos[2] = info
    local rest = len - PREFACE_LEN - taken
    if rest > 0 then
        local item = tree:add(upcase, tvb:range(PREFACE_LEN + taken, rest))
        item:append_text(", " .. rest .. " bytes after the frame")
        item:add_proto_expert_info(ex.trailing_bytes, rest
            .. " bytes after the frame: a datagram holds the preface and one frame (SPEC.md §8.2)")
        infos[3] = rest .. " B after the frame"
    end
    add_info(pinfo, table.concat(infos, ", "))
    return len
end

-- Entry points -------------------------------------------------------------

local function transport(pinfo)
    return (pinfo.port_type == 3) and "udp" or "tcp"
end

function upcase.dissector(tvb, pinfo, tree)
    local kind = transport(pinfo)
    local conv = conversation(pinfo, kind)
    if kind == "udp" then
        return dissect_udp(tvb, pinfo, tree, conv)
    end
    return dissect_tcp(tvb, pinfo, tree, conv)
end

local function starts_like_magic(tvb)
    local n = math.min(tvb:len(), MAGIC_LEN)
    return n > 0 and tvb:raw(0, n) == MAGIC:sub(1, n)
end

local function heuristic_tcp(tvb, pinfo, tree)
    local known = conversations[conversation_key(pinfo, "tcp")]
    if known == nil and not starts_like_magic(tvb) then
        return false
    end
    local conv, key = conversation(pinfo, "tcp")
    if known == nil then
        conv.heuristic = true
    end
    local consumed = dissect_tcp(tvb, pinfo, tree, conv)
    if consumed == 0 then
        conversations[key] = nil
        return false
    end
    if conv.mode == "framed" then
        pinfo.conversation = upcase
    end
    return true
end

local function heuristic_udp(tvb, pinfo, tree)
    if not is_framed_datagram(tvb) then
        return false
    end
    dissect_udp(tvb, pinfo, tree, conversation(pinfo, "udp"))
    pinfo.conversation = upcase
    return true
end

DissectorTable.get("tcp.port"):add(DEFAULT_PORT, upcase)
DissectorTable.get("udp.port"):add(DEFAULT_PORT, upcase)
upcase:register_heuristic("tcp", heuristic_tcp)
upcase:register_heuristic("udp", heuristic_udp)
