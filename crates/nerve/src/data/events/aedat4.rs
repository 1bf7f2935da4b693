//! AEDAT 4.0 event files, as written by iniVation's DV software and dv-processing.
//!
//! Layout (all integers little-endian):
//!
//! 1. the line `#!AER-DAT4.0\r\n`;
//! 2. a size-prefixed `IOHeader` flatbuffer (file identifier `IOHE`): the compression of
//!    every packet (`NONE`, `LZ4`, `LZ4_HIGH`, `ZSTD`, `ZSTD_HIGH`), the byte position of
//!    the file's data table (or −1) and `infoNode`, an XML document that declares each
//!    stream: its numeric id, its type identifier (`EVTS` events, `FRME` frames, `IMUS`
//!    inertial samples, `TRIG` triggers) and, for cameras, `sizeX`/`sizeY`;
//! 3. packets up to the data table (or the end of the file): an i32 stream id, an i32 byte
//!    size and that many bytes, compressed as the header says (LZ4 means the LZ4 *frame*
//!    format). Decompressed, an event packet is a size-prefixed flatbuffer with identifier
//!    `EVTS` whose table holds a vector of 16-byte `Event` structs: i64 timestamp (µs),
//!    i16 x, i16 y, bool polarity, 3 bytes of padding.
//!
//! [`parse_aedat4`] reads the events of the `EVTS` stream with the lowest id; packets of every
//! other stream (frames, IMU, triggers, a second camera) are skipped without being
//! decompressed. Polarity `true` becomes `+1`, `false` `−1`; timestamps are kept as stored
//! (DV writes absolute Unix-epoch microseconds). The sensor size comes from the stream's
//! `sizeX`/`sizeY`, else from the largest coordinates plus one. ZSTD files are refused: no
//! ZSTD decoder is built in.
//!
//! Flatbuffers are read through the `flatbuffers` crate's verifier (no generated code), so a
//! corrupt offset or length is an error naming the file, never an out-of-bounds read.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use flatbuffers::{
    FlatBufferBuilder, Follow, ForwardsUOffset, InvalidFlatbuffer, Push, PushAlignment,
    SimpleToVerifyInSlice, Table, VOffsetT, Vector, Verifiable, Verifier,
};

use super::Events;
use crate::error::{Error, Result};

/// The first line of every AEDAT 4.0 file.
pub const AEDAT4_MAGIC: &[u8] = b"#!AER-DAT4.0\r\n";

/// Decompressed packets larger than this are refused, so a small corrupt file cannot
/// allocate without bound.
const MAX_INFLATED: u64 = 1 << 30;
/// Bytes of one packet header: i32 stream id, i32 size.
const PACKET_HEADER: usize = 8;
/// Bytes of one `Event` struct in an `EVTS` packet.
const EVENT_BYTES: usize = 16;
/// Events per packet written by [`encode_aedat4`] (DV's recorder writes packets of a few
/// thousand events too).
const PACKET_EVENTS: usize = 4096;

/// Compression of the packets of an AEDAT 4.0 file (the `IOHeader`'s `compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aedat4Compression {
    /// Packets stored as is.
    None,
    /// LZ4 frame format.
    Lz4,
    /// LZ4 frame format at a higher compression level (read like [`Aedat4Compression::Lz4`]).
    Lz4High,
    /// Zstandard: refused when reading, as no ZSTD decoder is built in.
    Zstd,
    /// Zstandard at a higher level: refused like [`Aedat4Compression::Zstd`].
    ZstdHigh,
}

impl Aedat4Compression {
    /// The `CompressionType` value stored in the header.
    fn code(self) -> i32 {
        match self {
            Aedat4Compression::None => 0,
            Aedat4Compression::Lz4 => 1,
            Aedat4Compression::Lz4High => 2,
            Aedat4Compression::Zstd => 3,
            Aedat4Compression::ZstdHigh => 4,
        }
    }

    fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            0 => Aedat4Compression::None,
            1 => Aedat4Compression::Lz4,
            2 => Aedat4Compression::Lz4High,
            3 => Aedat4Compression::Zstd,
            4 => Aedat4Compression::ZstdHigh,
            _ => return None,
        })
    }
}

/// One stream declared in an AEDAT 4.0 header's `infoNode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aedat4Stream {
    /// Stream id used by its packets.
    pub id: i32,
    /// Type identifier, e.g. `EVTS`, `FRME`, `IMUS`, `TRIG` (empty if undeclared).
    pub type_id: String,
    /// Sensor size `(sizeX, sizeY)` when both are declared.
    pub size: Option<(u16, u16)>,
}

/// The decoded header of an AEDAT 4.0 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aedat4Header {
    /// Compression of every packet.
    pub compression: Aedat4Compression,
    /// Byte position of the data table, where packets end; `None` when absent.
    pub data_table: Option<usize>,
    /// Declared streams, sorted by id.
    pub streams: Vec<Aedat4Stream>,
    /// Byte position of the first packet.
    pub data_start: usize,
}

/// View of the `IOHeader` table (slots: compression, dataTablePosition, infoNode).
struct IoHeader<'a>(Table<'a>);

impl IoHeader<'_> {
    const COMPRESSION: VOffsetT = 4;
    const DATA_TABLE: VOffsetT = 6;
    const INFO_NODE: VOffsetT = 8;
}

impl<'a> Follow<'a> for IoHeader<'a> {
    type Inner = IoHeader<'a>;
    unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
        // SAFETY: forwarded contract: `loc` holds a table (checked by the verifier below).
        IoHeader(unsafe { Table::new(buf, loc) })
    }
}

impl Verifiable for IoHeader<'_> {
    fn run_verifier(v: &mut Verifier, pos: usize) -> std::result::Result<(), InvalidFlatbuffer> {
        v.visit_table(pos)?
            .visit_field::<i32>("compression", Self::COMPRESSION, false)?
            .visit_field::<i64>("dataTablePosition", Self::DATA_TABLE, false)?
            .visit_field::<ForwardsUOffset<&str>>("infoNode", Self::INFO_NODE, false)?
            .finish();
        Ok(())
    }
}

/// One 16-byte `Event` struct, kept as raw bytes and decoded field by field.
#[derive(Debug, Clone, Copy)]
struct RawEvent([u8; EVENT_BYTES]);

// Structs are verified by range only: any 16 bytes are a valid `RawEvent`.
impl SimpleToVerifyInSlice for RawEvent {}

impl<'a> Follow<'a> for RawEvent {
    type Inner = RawEvent;
    unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
        let mut b = [0; EVENT_BYTES];
        b.copy_from_slice(&buf[loc..loc + EVENT_BYTES]);
        RawEvent(b)
    }
}

impl Push for RawEvent {
    type Output = RawEvent;
    unsafe fn push(&self, dst: &mut [u8], _written_len: usize) {
        dst[..EVENT_BYTES].copy_from_slice(&self.0);
    }
    fn alignment() -> PushAlignment {
        // The schema's struct holds an i64, so flatc aligns it to 8 bytes.
        PushAlignment::new(8)
    }
}

/// View of the `EventPacket` table (slot: elements).
struct EventPacket<'a>(Table<'a>);

impl EventPacket<'_> {
    const ELEMENTS: VOffsetT = 4;
}

impl<'a> Follow<'a> for EventPacket<'a> {
    type Inner = EventPacket<'a>;
    unsafe fn follow(buf: &'a [u8], loc: usize) -> Self::Inner {
        // SAFETY: forwarded contract: `loc` holds a table (checked by the verifier below).
        EventPacket(unsafe { Table::new(buf, loc) })
    }
}

impl Verifiable for EventPacket<'_> {
    fn run_verifier(v: &mut Verifier, pos: usize) -> std::result::Result<(), InvalidFlatbuffer> {
        v.visit_table(pos)?
            .visit_field::<ForwardsUOffset<Vector<RawEvent>>>("elements", Self::ELEMENTS, false)?
            .finish();
        Ok(())
    }
}

/// Reads an AEDAT 4.0 file.
pub fn read_aedat4(path: impl AsRef<Path>) -> Result<Events> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_aedat4(&bytes, path)
}

/// Decodes the header of AEDAT 4.0 bytes: compression, data-table position and streams.
pub fn parse_aedat4_header(bytes: &[u8], path: &Path) -> Result<Aedat4Header> {
    let bad = |msg: String| Error::format(path, msg);
    if !bytes.starts_with(AEDAT4_MAGIC) {
        return Err(bad(
            "not an AEDAT 4.0 file: missing '#!AER-DAT4.0' first line".into(),
        ));
    }
    let start = AEDAT4_MAGIC.len();
    let Some(prefix) = bytes.get(start..start + 4) else {
        return Err(bad("truncated header: no IOHeader size".into()));
    };
    let size = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    let end = start + 4 + size;
    let Some(fb) = bytes.get(start..end) else {
        return Err(bad(format!(
            "truncated header: IOHeader of {size} bytes overruns the {}-byte file",
            bytes.len()
        )));
    };
    if fb.get(8..12) != Some(b"IOHE".as_slice()) {
        return Err(bad("corrupt header: no 'IOHE' flatbuffer identifier".into()));
    }
    let header = flatbuffers::size_prefixed_root::<IoHeader>(fb)
        .map_err(|e| bad(format!("corrupt IOHeader flatbuffer: {e}")))?;
    // SAFETY: the verifier above checked each slot against the type read here.
    let (code, table_pos, info) = unsafe {
        (
            header.0.get::<i32>(IoHeader::COMPRESSION, Some(0)),
            header.0.get::<i64>(IoHeader::DATA_TABLE, Some(-1)),
            header
                .0
                .get::<ForwardsUOffset<&str>>(IoHeader::INFO_NODE, None),
        )
    };
    let code = code.unwrap_or(0);
    let compression = Aedat4Compression::from_code(code)
        .ok_or_else(|| bad(format!("unknown compression type {code} in the IOHeader")))?;
    let data_table = match table_pos.unwrap_or(-1) {
        -1 => None,
        p => match usize::try_from(p) {
            Ok(p) if (end..=bytes.len()).contains(&p) => Some(p),
            _ => {
                return Err(bad(format!(
                    "data table position {p} lies outside the packets (bytes {end}..={}); \
                     the file may be truncated",
                    bytes.len()
                )))
            }
        },
    };
    let info = info.ok_or_else(|| bad("IOHeader has no infoNode (stream list)".into()))?;
    let streams = streams_from_xml(info, path)?;
    Ok(Aedat4Header {
        compression,
        data_table,
        streams,
        data_start: end,
    })
}

/// The value of `name="..."` inside one tag's text.
fn xml_attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let at = tag.find(&key)? + key.len();
    let rest = &tag[at..];
    Some(&rest[..rest.find('"')?])
}

/// The streams declared by the `infoNode` XML.
///
/// A deliberately small reader of DV's configuration tree: `<node name="..">` elements nest,
/// `<attr key="..">value</attr>` elements carry values, and an attribute belongs to the stream
/// named by its innermost enclosing node whose name is an integer (so `sizeX` inside a
/// stream's `info` node belongs to that stream).
fn streams_from_xml(xml: &str, path: &Path) -> Result<Vec<Aedat4Stream>> {
    #[derive(Default)]
    struct Partial {
        type_id: String,
        size_x: Option<u16>,
        size_y: Option<u16>,
    }
    let mut streams: BTreeMap<i32, Partial> = BTreeMap::new();
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[..gt];
        let after = &rest[gt + 1..];
        if tag.starts_with("/node") {
            stack.pop();
        } else if tag.starts_with("node") && !tag.ends_with('/') {
            stack.push(xml_attr(tag, "name").unwrap_or(""));
        } else if tag.starts_with("attr") {
            let Some(close) = after.find("</attr>") else {
                break;
            };
            let value = after[..close].trim();
            let key = xml_attr(tag, "key").unwrap_or("");
            let id = stack.iter().rev().find_map(|n| n.parse::<i32>().ok());
            if let Some(id) = id {
                // 0 is accepted: an empty recording of an unknown sensor is written as 0x0,
                // and any event on such a sensor is refused later as lying outside it.
                let dim = || -> Result<u16> {
                    value.parse::<u16>().map_err(|_| {
                        Error::format(
                            path,
                            format!("stream {id} declares {key} '{value}', not a size 0..=65535"),
                        )
                    })
                };
                match key {
                    "typeIdentifier" => streams.entry(id).or_default().type_id = value.into(),
                    "sizeX" => streams.entry(id).or_default().size_x = Some(dim()?),
                    "sizeY" => streams.entry(id).or_default().size_y = Some(dim()?),
                    _ => {}
                }
            }
        }
        rest = after;
    }
    Ok(streams
        .into_iter()
        .map(|(id, p)| Aedat4Stream {
            id,
            type_id: p.type_id,
            size: p.size_x.zip(p.size_y),
        })
        .collect())
}

/// Decodes AEDAT 4.0 bytes: the events of the lowest-id `EVTS` stream (see the module docs);
/// `path` only names the source in errors.
pub fn parse_aedat4(bytes: &[u8], path: &Path) -> Result<Events> {
    let bad = |msg: String| Error::format(path, msg);
    let header = parse_aedat4_header(bytes, path)?;
    let compression = header.compression;
    if matches!(
        compression,
        Aedat4Compression::Zstd | Aedat4Compression::ZstdHigh
    ) {
        return Err(bad(format!(
            "AEDAT 4.0 packets are {compression:?}-compressed, which is not supported (no \
             ZSTD decoder is built in); re-export the recording with LZ4 or no compression"
        )));
    }
    let Some(stream) = header.streams.iter().find(|s| s.type_id == "EVTS") else {
        return Err(bad(format!(
            "no event (EVTS) stream among the declared streams: [{}]",
            header
                .streams
                .iter()
                .map(|s| format!("{} {}", s.id, s.type_id))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let end = header.data_table.unwrap_or(bytes.len());
    let (mut x, mut y, mut t, mut p) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut pos = header.data_start;
    while pos < end {
        let Some(h) = bytes
            .get(pos..pos + PACKET_HEADER)
            .filter(|_| pos + 8 <= end)
        else {
            return Err(bad(format!("truncated packet header at byte {pos}")));
        };
        let id = i32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let size = i32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let body_start = pos + PACKET_HEADER;
        let body = usize::try_from(size)
            .ok()
            .and_then(|n| body_start.checked_add(n))
            .filter(|&e| e <= end)
            .and_then(|e| bytes.get(body_start..e));
        let Some(body) = body else {
            return Err(bad(format!(
                "truncated packet at byte {pos}: size {size} overruns the packet area \
                 (ends at byte {end})"
            )));
        };
        if !header.streams.iter().any(|s| s.id == id) {
            return Err(bad(format!(
                "packet at byte {pos} belongs to stream {id}, which the header does not declare"
            )));
        }
        if id == stream.id {
            let raw = decompress(body, compression)
                .map_err(|e| bad(format!("packet at byte {pos}: {e}")))?;
            decode_events(&raw, &mut x, &mut y, &mut t, &mut p)
                .map_err(|e| bad(format!("event packet at byte {pos}: {e}")))?;
        }
        pos = body_start + body.len();
    }
    let sensor = match stream.size {
        Some(size) => size,
        // Coordinates are non-negative i16 values, so max + 1 always fits in u16.
        None => (
            x.iter().max().map_or(0, |m| m + 1),
            y.iter().max().map_or(0, |m| m + 1),
        ),
    };
    Events::new(x, y, t, p, sensor).map_err(|e| bad(e.to_string()))
}

/// One packet's payload, decompressed.
fn decompress(body: &[u8], compression: Aedat4Compression) -> std::result::Result<Vec<u8>, String> {
    match compression {
        Aedat4Compression::None => Ok(body.to_vec()),
        Aedat4Compression::Lz4 | Aedat4Compression::Lz4High => {
            let mut out = Vec::new();
            lz4_flex::frame::FrameDecoder::new(body)
                .take(MAX_INFLATED + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("corrupt LZ4 frame: {e}"))?;
            if out.len() as u64 > MAX_INFLATED {
                return Err(format!("decompresses to more than {MAX_INFLATED} bytes"));
            }
            Ok(out)
        }
        Aedat4Compression::Zstd | Aedat4Compression::ZstdHigh => {
            Err("ZSTD compression is not supported".into())
        }
    }
}

/// Appends the events of one decompressed `EVTS` packet.
fn decode_events(
    raw: &[u8],
    x: &mut Vec<u16>,
    y: &mut Vec<u16>,
    t: &mut Vec<i64>,
    p: &mut Vec<i8>,
) -> std::result::Result<(), String> {
    let Some(prefix) = raw.get(..4) else {
        return Err(format!("{} bytes hold no flatbuffer", raw.len()));
    };
    let size = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    let Some(fb) = raw.get(..size.saturating_add(4)) else {
        return Err(format!(
            "flatbuffer of {size} bytes overruns the {}-byte packet",
            raw.len()
        ));
    };
    if fb.get(8..12) != Some(b"EVTS".as_slice()) {
        return Err("no 'EVTS' flatbuffer identifier".into());
    }
    let packet = flatbuffers::size_prefixed_root::<EventPacket>(fb)
        .map_err(|e| format!("corrupt EventPacket flatbuffer: {e}"))?;
    // SAFETY: the verifier above checked that the slot holds a vector of 16-byte structs.
    let elements = unsafe {
        packet
            .0
            .get::<ForwardsUOffset<Vector<RawEvent>>>(EventPacket::ELEMENTS, None)
    };
    let Some(elements) = elements else {
        return Ok(());
    };
    for (i, e) in elements.bytes().chunks_exact(EVENT_BYTES).enumerate() {
        let ts = i64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
        let ex = i16::from_le_bytes([e[8], e[9]]);
        let ey = i16::from_le_bytes([e[10], e[11]]);
        let (Ok(ex), Ok(ey)) = (u16::try_from(ex), u16::try_from(ey)) else {
            return Err(format!("event {i} has negative coordinates ({ex}, {ey})"));
        };
        x.push(ex);
        y.push(ey);
        t.push(ts);
        // A flatbuffers bool is one byte; any non-zero byte reads as true, as in C++.
        p.push(if e[12] != 0 { 1 } else { -1 });
    }
    Ok(())
}

/// Encodes events as an AEDAT 4.0 file with one `EVTS` stream (id 0) whose `sizeX`/`sizeY`
/// are the sensor size, in packets of up to 4096 events, compressed with `None` or `Lz4`
/// (`Lz4High` is written as plain LZ4 frames, which readers treat alike; ZSTD is refused).
/// Coordinates must fit an i16; no data table is written.
pub fn encode_aedat4(events: &Events, compression: Aedat4Compression) -> Result<Vec<u8>> {
    if matches!(
        compression,
        Aedat4Compression::Zstd | Aedat4Compression::ZstdHigh
    ) {
        return Err(Error::invalid(
            "AEDAT 4.0 compression",
            "ZSTD is not supported; use None or Lz4",
        ));
    }
    let (w, h) = events.sensor;
    if w > i16::MAX as u16 || h > i16::MAX as u16 {
        return Err(Error::invalid(
            "events",
            format!("sensor {w}x{h} exceeds the i16 coordinates of AEDAT 4.0"),
        ));
    }
    let xml = format!(
        "<dv version=\"2.0\">\n    <node name=\"outInfo\" path=\"/outInfo/\">\n        \
         <node name=\"0\" path=\"/outInfo/0/\">\n            \
         <attr key=\"compression\" type=\"string\">{compression:?}</attr>\n            \
         <attr key=\"typeIdentifier\" type=\"string\">EVTS</attr>\n            \
         <node name=\"info\" path=\"/outInfo/0/info/\">\n                \
         <attr key=\"sizeX\" type=\"int\">{w}</attr>\n                \
         <attr key=\"sizeY\" type=\"int\">{h}</attr>\n            </node>\n        \
         </node>\n    </node>\n</dv>\n"
    );
    let mut fbb = FlatBufferBuilder::new();
    let info = fbb.create_string(&xml);
    let table = fbb.start_table();
    fbb.push_slot_always::<i32>(IoHeader::COMPRESSION, compression.code());
    fbb.push_slot_always::<i64>(IoHeader::DATA_TABLE, -1);
    fbb.push_slot_always(IoHeader::INFO_NODE, info);
    let root = fbb.end_table(table);
    fbb.finish_size_prefixed(root, Some("IOHE"));
    let mut out = AEDAT4_MAGIC.to_vec();
    out.extend_from_slice(fbb.finished_data());

    let n = events.len();
    for start in (0..n).step_by(PACKET_EVENTS) {
        let stop = (start + PACKET_EVENTS).min(n);
        let raw: Vec<RawEvent> = (start..stop)
            .map(|i| {
                let mut b = [0u8; EVENT_BYTES];
                b[..8].copy_from_slice(&events.t[i].to_le_bytes());
                b[8..10].copy_from_slice(&events.x[i].to_le_bytes());
                b[10..12].copy_from_slice(&events.y[i].to_le_bytes());
                b[12] = u8::from(events.p[i] > 0);
                RawEvent(b)
            })
            .collect();
        let mut fbb = FlatBufferBuilder::new();
        let elements = fbb.create_vector(&raw);
        let table = fbb.start_table();
        fbb.push_slot_always(EventPacket::ELEMENTS, elements);
        let root = fbb.end_table(table);
        fbb.finish_size_prefixed(root, Some("EVTS"));
        let body = match compression {
            Aedat4Compression::None => fbb.finished_data().to_vec(),
            _ => {
                let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
                let done = enc
                    .write_all(fbb.finished_data())
                    .map_err(|e| e.to_string())
                    .and_then(|()| enc.finish().map_err(|e| e.to_string()));
                done.map_err(|e| Error::invalid("AEDAT 4.0 packet", format!("LZ4: {e}")))?
            }
        };
        let size = i32::try_from(body.len())
            .map_err(|_| Error::invalid("AEDAT 4.0 packet", "larger than 2 GiB"))?;
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&body);
    }
    Ok(out)
}

/// Writes events as an AEDAT 4.0 file (see [`encode_aedat4`]), atomically.
pub fn write_aedat4(
    path: impl AsRef<Path>,
    events: &Events,
    compression: Aedat4Compression,
) -> Result<()> {
    crate::fsutil::write_atomic(path, &encode_aedat4(events, compression)?)
}
