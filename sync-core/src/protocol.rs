//! Protocol codes and framing of the Colyseus room protocol
//! (room-protocol.md §4–§7).
//!
//! Every WebSocket frame holds one message whose first byte is a protocol
//! code. [`parse_client_frame`] reads what a client sends and never panics;
//! the `encode_*` functions build what the server sends.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// The two client generations Roomcast serves (room-protocol.md §10, §11):
/// the schema crate's type, one for the room protocol and the state
/// encoding.
pub use roomcast_schema::Dialect;

/// Protocol codes (room-protocol.md §4).
pub(crate) mod code {
    pub(crate) const JOIN_ROOM: u8 = 10;
    pub(crate) const ERROR: u8 = 11;
    pub(crate) const LEAVE_ROOM: u8 = 12;
    pub(crate) const ROOM_DATA: u8 = 13;
    pub(crate) const ROOM_STATE: u8 = 14;
    pub(crate) const ROOM_STATE_PATCH: u8 = 15;
    pub(crate) const ROOM_DATA_BYTES: u8 = 17;
    pub(crate) const PING: u8 = 18;
    pub(crate) const ROOM_INPUT_RELIABLE: u8 = 19;
    pub(crate) const ROOM_INPUT_UNRELIABLE: u8 = 20;
    pub(crate) const ROOM_REQUEST: u8 = 21;
    pub(crate) const ROOM_RESPONSE: u8 = 22;
}

/// WebSocket close codes the server uses (room-protocol.md §7).
pub mod close_code {
    /// End of a latency probe.
    pub const NORMAL: u16 = 1000;
    /// Consented leave: the client sent LEAVE_ROOM, or `leave`/`disconnect`.
    pub const CONSENTED: u16 = 4000;
    /// Graceful shutdown (0.18 clients; 0.16 clients get [`CONSENTED`]).
    pub const SERVER_SHUTDOWN: u16 = 4001;
    /// Failed join, bad payload, rate limit, error during `on_join`.
    pub const WITH_ERROR: u16 = 4002;
    /// A failed join that carried a reconnection token (0.18 clients).
    pub const FAILED_TO_RECONNECT: u16 = 4003;
    /// Development-mode restart: the client may try to reconnect.
    pub const MAY_TRY_RECONNECT: u16 = 4010;
}

/// Error codes carried by ERROR frames and matchmaking errors
/// (room-protocol.md §2.3). The legacy (0.16) numbers are these plus 3690.
pub mod error_code {
    /// Unknown method, or room name not defined.
    pub const MATCHMAKE_NO_HANDLER: u16 = 520;
    /// `join`: no room matches.
    pub const MATCHMAKE_INVALID_CRITERIA: u16 = 521;
    /// `joinById`/`reconnect`: room not found, locked or disposed.
    pub const MATCHMAKE_INVALID_ROOM_ID: u16 = 522;
    /// A failure in `on_create`/`on_join`, or a malformed request.
    pub const MATCHMAKE_UNHANDLED: u16 = 523;
    /// The seat reservation expired or was already used.
    pub const MATCHMAKE_EXPIRED: u16 = 524;
    /// `on_auth` refused the client without a code of its own.
    pub const AUTH_FAILED: u16 = 525;
    /// The application failed without a code of its own.
    pub const APPLICATION_ERROR: u16 = 526;
    /// A message payload could not be decoded.
    pub const INVALID_PAYLOAD: u16 = 4217;
    /// Roomcast's own: the client did not acknowledge JOIN_ROOM in time,
    /// the mark of a client of the other protocol generation (an
    /// `@colyseus/sdk` 0.18 client on a 0.16 endpoint, or colyseus.js 0.16
    /// on a 0.18 one), whose SDK cannot decode the JOIN_ROOM it got.
    pub const JOIN_NOT_ACKNOWLEDGED: u16 = 4218;

    /// The number a 0.16 client expects for `code` (520…526 → 4210…4216).
    #[must_use]
    pub fn legacy(code: u16) -> u16 {
        if (MATCHMAKE_NO_HANDLER..=APPLICATION_ERROR).contains(&code) {
            code + 3690
        } else {
            code
        }
    }
}

/// A message type: a name or a number (room-protocol.md §5.5).
///
/// Serializes as the name or the number, as the SDKs see it.
///
/// # Examples
///
/// ```
/// use roomcast::MessageType;
///
/// assert_eq!(serde_json::to_value(MessageType::from("move")).unwrap(), "move");
/// assert_eq!(serde_json::to_value(MessageType::from(7)).unwrap(), 7);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// A string type, as in `room.send("move", …)`.
    Name(String),
    /// A numeric type, as in `room.send(7, …)`.
    Number(i64),
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => write!(f, "{name:?}"),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

impl serde::Serialize for MessageType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Name(name) => serializer.serialize_str(name),
            Self::Number(n) => serializer.serialize_i64(*n),
        }
    }
}

impl From<&str> for MessageType {
    fn from(name: &str) -> Self {
        Self::Name(name.to_owned())
    }
}

impl From<String> for MessageType {
    fn from(name: String) -> Self {
        Self::Name(name)
    }
}

impl From<i64> for MessageType {
    fn from(n: i64) -> Self {
        Self::Number(n)
    }
}

impl From<i32> for MessageType {
    fn from(n: i32) -> Self {
        Self::Number(i64::from(n))
    }
}

/// A frame received from a client, borrowing its payload.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ClientFrame<'a> {
    /// `0a`: acknowledgement of JOIN_ROOM.
    JoinAck,
    /// `0c`: consented leave.
    Leave,
    /// `0d type [msgpack]`: a message; `payload` is empty when the message
    /// was `undefined`.
    Data {
        /// The message type.
        ty: MessageType,
        /// Undecoded msgpack payload.
        payload: &'a [u8],
    },
    /// `11 type bytes`: a raw-bytes message.
    DataBytes {
        /// The message type.
        ty: MessageType,
        /// The raw bytes.
        payload: &'a [u8],
    },
    /// `12`: a ping (0.18).
    Ping,
    /// `15 id type [msgpack]`: a request expecting a response (0.18).
    Request {
        /// Request id to echo in the response.
        id: u32,
        /// The message type.
        ty: MessageType,
        /// Undecoded msgpack payload.
        payload: &'a [u8],
    },
}

/// Why a client frame was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame has no bytes.
    #[error("empty frame")]
    Empty,
    /// The first byte is not a code a client may send.
    #[error("unknown protocol code 0x{0:02x}")]
    UnknownCode(u8),
    /// Input frames are only valid after the server advertised inputs.
    #[error("input frames (code 0x{0:02x}) are not enabled in this room")]
    InputNotEnabled(u8),
    /// The message type or request id is missing or malformed.
    #[error("malformed message type or request id at byte {0}")]
    BadHeader(usize),
}

/// Parses one client frame.
///
/// # Errors
///
/// [`FrameError`] for an empty frame, an unknown code, or a truncated or
/// malformed message type. Payload bytes are not checked here.
///
/// # Examples
///
/// ```
/// use roomcast::protocol::{parse_client_frame, ClientFrame, MessageType};
///
/// let frame = parse_client_frame(&[0x0d, 0xa4, b'm', b'o', b'v', b'e', 0xc0])?;
/// assert_eq!(
///     frame,
///     ClientFrame::Data { ty: MessageType::Name("move".into()), payload: &[0xc0] }
/// );
/// # Ok::<(), roomcast::protocol::FrameError>(())
/// ```
pub fn parse_client_frame(frame: &[u8]) -> Result<ClientFrame<'_>, FrameError> {
    let (&first, rest) = frame.split_first().ok_or(FrameError::Empty)?;
    let mut pos = 1;
    // 0.18 keeps the top three bits for modifiers.
    match first & 0x1f {
        code::JOIN_ROOM => Ok(ClientFrame::JoinAck),
        code::LEAVE_ROOM => Ok(ClientFrame::Leave),
        code::PING => Ok(ClientFrame::Ping),
        code::ROOM_DATA => {
            let ty = read_type(frame, &mut pos)?;
            Ok(ClientFrame::Data {
                ty,
                payload: &frame[pos..],
            })
        }
        code::ROOM_DATA_BYTES => {
            let ty = read_type(frame, &mut pos)?;
            Ok(ClientFrame::DataBytes {
                ty,
                payload: &frame[pos..],
            })
        }
        code::ROOM_REQUEST => {
            let id = read_number(frame, &mut pos)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(FrameError::BadHeader(1))?;
            let ty = read_type(frame, &mut pos)?;
            Ok(ClientFrame::Request {
                id,
                ty,
                payload: &frame[pos..],
            })
        }
        code::ROOM_INPUT_RELIABLE | code::ROOM_INPUT_UNRELIABLE => {
            Err(FrameError::InputNotEnabled(first))
        }
        _ => {
            let _ = rest;
            Err(FrameError::UnknownCode(first))
        }
    }
}

fn read_type(frame: &[u8], pos: &mut usize) -> Result<MessageType, FrameError> {
    let start = *pos;
    let bad = || FrameError::BadHeader(start);
    let first = *frame.get(start).ok_or_else(bad)?;
    // `stringCheck` of the SDKs: `a1..bf`, `d9`, `da`, `db` are strings.
    if matches!(first, 0xa1..=0xbf | 0xd9..=0xdb) {
        read_str(frame, pos).map(MessageType::Name).ok_or_else(bad)
    } else {
        read_number(frame, pos)
            .map(MessageType::Number)
            .ok_or_else(bad)
    }
}

/// Reads a schema `number` that must be an integer (schema-wire.md §2.2).
pub(crate) fn read_number(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let first = *buf.get(*pos)?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let bytes = buf.get(*pos + 1..*pos + 1 + n)?;
        *pos += 1 + n;
        Some(bytes)
    };
    let le = |bytes: &[u8]| {
        let mut raw = [0u8; 8];
        raw[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(raw)
    };
    let value = match first {
        0x00..=0x7f => {
            *pos += 1;
            i64::from(first)
        }
        0xe0..=0xff => {
            *pos += 1;
            i64::from(first as i8)
        }
        0xcc => i64::from(take(1)?[0]),
        0xcd => le(take(2)?) as i64,
        0xce => le(take(4)?) as i64,
        0xcf => i64::try_from(le(take(8)?)).ok()?,
        0xd0 => i64::from(take(1)?[0] as i8),
        0xd1 => i64::from(le(take(2)?) as u16 as i16),
        0xd2 => i64::from(le(take(4)?) as u32 as i32),
        0xd3 => le(take(8)?) as i64,
        0xca => float_to_int(f64::from(f32::from_bits(le(take(4)?) as u32)))?,
        0xcb => float_to_int(f64::from_bits(le(take(8)?)))?,
        _ => return None,
    };
    Some(value)
}

fn float_to_int(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15).then_some(f as i64)
}

/// Reads a schema `string` (schema-wire.md §2.3), strictly.
pub(crate) fn read_str(buf: &[u8], pos: &mut usize) -> Option<String> {
    let first = *buf.get(*pos)?;
    let (header, len) = match first {
        0xa0..=0xbf => (1, usize::from(first & 0x1f)),
        0xd9 => (2, usize::from(*buf.get(*pos + 1)?)),
        0xda => {
            let b = buf.get(*pos + 1..*pos + 3)?;
            (3, usize::from(u16::from_le_bytes([b[0], b[1]])))
        }
        0xdb => {
            let b = buf.get(*pos + 1..*pos + 5)?;
            (
                5,
                usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()?,
            )
        }
        _ => return None,
    };
    let start = *pos + header;
    let bytes = buf.get(start..start.checked_add(len)?)?;
    let s = std::str::from_utf8(bytes).ok()?.to_owned();
    *pos = start + len;
    Some(s)
}

/// Writes an integer as a schema `number` (schema-wire.md §2.2, integer
/// path; values beyond 32 bits take the float path like the reference).
pub(crate) fn write_number(out: &mut impl BufMut, value: i64) {
    match value {
        -32..=0x7f => out.put_u8(value as u8),
        0x80..=0xff => {
            out.put_u8(0xcc);
            out.put_u8(value as u8);
        }
        0x100..=0xffff => {
            out.put_u8(0xcd);
            out.put_u16_le(value as u16);
        }
        0x1_0000..=0x7fff_ffff => {
            out.put_u8(0xce);
            out.put_u32_le(value as u32);
        }
        -128..=-33 => {
            out.put_u8(0xd0);
            out.put_i8(value as i8);
        }
        -32768..=-129 => {
            out.put_u8(0xd1);
            out.put_i16_le(value as i16);
        }
        -0x8000_0000..=-32769 => {
            out.put_u8(0xd2);
            out.put_i32_le(value as i32);
        }
        _ => {
            out.put_u8(0xcb);
            out.put_f64_le(value as f64);
        }
    }
}

/// Writes a schema `string` (schema-wire.md §2.3).
pub(crate) fn write_str(out: &mut impl BufMut, s: &str) {
    let len = s.len();
    if len < 32 {
        out.put_u8(0xa0 | len as u8);
    } else if len < 0x100 {
        out.put_u8(0xd9);
        out.put_u8(len as u8);
    } else if len < 0x1_0000 {
        out.put_u8(0xda);
        out.put_u16_le(len as u16);
    } else {
        out.put_u8(0xdb);
        out.put_u32_le(u32::try_from(len).unwrap_or(u32::MAX));
    }
    out.put_slice(s.as_bytes());
}

fn write_type(out: &mut impl BufMut, ty: &MessageType) {
    match ty {
        MessageType::Name(name) => write_str(out, name),
        MessageType::Number(n) => write_number(out, *n),
    }
}

/// JOIN_ROOM (room-protocol.md §5.1). `handshake` is the Reflection; the
/// modern layout length-prefixes it, the legacy one runs it to the end.
#[must_use]
pub fn encode_join_room(
    dialect: Dialect,
    token: &str,
    serializer: &str,
    handshake: Option<&[u8]>,
) -> Bytes {
    let handshake = handshake.unwrap_or_default();
    let mut out = BytesMut::with_capacity(8 + token.len() + serializer.len() + handshake.len());
    out.put_u8(code::JOIN_ROOM);
    // Lengths are single raw bytes; tokens and serializer ids are short.
    out.put_u8(token.len().min(255) as u8);
    out.put_slice(&token.as_bytes()[..token.len().min(255)]);
    out.put_u8(serializer.len().min(255) as u8);
    out.put_slice(&serializer.as_bytes()[..serializer.len().min(255)]);
    if dialect == Dialect::Modern {
        write_number(&mut out, i64::try_from(handshake.len()).unwrap_or(i64::MAX));
    }
    out.put_slice(handshake);
    out.freeze()
}

/// ERROR (room-protocol.md §5.2).
#[must_use]
pub fn encode_error(code: u16, message: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + message.len() + 5);
    out.put_u8(code::ERROR);
    write_number(&mut out, i64::from(code));
    write_str(&mut out, message);
    out.freeze()
}

/// LEAVE_ROOM (room-protocol.md §5.3).
#[must_use]
pub fn encode_leave_room() -> Bytes {
    Bytes::from_static(&[code::LEAVE_ROOM])
}

/// PING reply (room-protocol.md §5.7).
#[must_use]
pub fn encode_ping() -> Bytes {
    Bytes::from_static(&[code::PING])
}

/// ROOM_STATE (`full == true`) or ROOM_STATE_PATCH around a body.
#[must_use]
pub fn encode_state(full: bool, body: &[u8]) -> Bytes {
    encode_state_parts(full, body, &[])
}

/// ROOM_STATE / ROOM_STATE_PATCH of a client with a view: the shared body
/// followed by its view's part (schema-wire.md §11).
pub(crate) fn encode_state_parts(full: bool, shared: &[u8], view: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(1 + shared.len() + view.len());
    out.put_u8(if full {
        code::ROOM_STATE
    } else {
        code::ROOM_STATE_PATCH
    });
    out.put_slice(shared);
    out.put_slice(view);
    out.freeze()
}

/// ROOM_DATA with an already msgpack-encoded payload (empty for none).
#[must_use]
pub fn encode_room_data(ty: &MessageType, payload: &[u8]) -> Bytes {
    encode_typed(code::ROOM_DATA, ty, payload)
}

/// ROOM_DATA_BYTES (room-protocol.md §5.6).
#[must_use]
pub fn encode_room_data_bytes(ty: &MessageType, payload: &[u8]) -> Bytes {
    encode_typed(code::ROOM_DATA_BYTES, ty, payload)
}

fn encode_typed(code: u8, ty: &MessageType, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(16 + payload.len());
    out.put_u8(code);
    write_type(&mut out, ty);
    out.put_slice(payload);
    out.freeze()
}

/// Status of a ROOM_RESPONSE (room-protocol.md §5.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseStatus {
    /// The handler answered.
    Ok = 0,
    /// The handler refused.
    Rejected = 1,
    /// No handler, or it failed; payload `{name, message, code?}`.
    Error = 2,
}

/// ROOM_RESPONSE (room-protocol.md §5.8).
#[must_use]
pub fn encode_response(id: u32, status: ResponseStatus, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + payload.len());
    out.put_u8(code::ROOM_RESPONSE);
    write_number(&mut out, i64::from(id));
    out.put_u8(status as u8);
    out.put_slice(payload);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;
    use proptest::prelude::*;

    #[test]
    fn join_room_layouts() {
        let reflection = hex("8001ff01800002ff0280008203ff03800004ff0480a16e81a66e756d626572");
        let modern = encode_join_room(Dialect::Modern, "AbCdEfGhI", "schema", Some(&reflection));
        assert_eq!(
            &modern[..],
            &hex("0a 09 416243644566476849 06 736368656d61 1f
                 8001ff01800002ff0280008203ff03800004ff0480a16e81a66e756d626572")[..]
        );
        let skipped = encode_join_room(Dialect::Modern, "AbCdEfGhI", "schema", None);
        assert_eq!(
            &skipped[..],
            &hex("0a 09 416243644566476849 06 736368656d61 00")[..]
        );
        let legacy = encode_join_room(Dialect::Legacy, "AbCdEfGhI", "schema", Some(&reflection));
        assert_eq!(&legacy[..18], &modern[..18]);
        assert_eq!(&legacy[18..], &reflection[..]);
    }

    #[test]
    fn error_frame() {
        assert_eq!(
            &encode_error(522, "room \"x\" not found")[..],
            &hex("0b cd 0a 02 b2 726f6f6d20227822206e6f7420666f756e64")[..]
        );
    }

    #[test]
    fn room_data_frames() {
        let payload = hex("de 0002 a4 74657874 a2 6869 a1 6e 01");
        let frame = encode_room_data(&"chat".into(), &payload);
        assert_eq!(&frame[..6], &hex("0d a4 63686174")[..]);
        assert_eq!(
            &encode_room_data(&MessageType::Number(7), &hex("92 01 02"))[..],
            &hex("0d 07 92 01 02")[..]
        );
        assert_eq!(
            &encode_room_data_bytes(&"bin".into(), &[1, 2, 3])[..],
            &hex("11 a3 62696e 01 02 03")[..]
        );
        assert_eq!(
            &encode_response(5, ResponseStatus::Ok, &hex("de0001 a2 6f6b c3"))[..],
            &hex("16 05 00 de0001 a2 6f6b c3")[..]
        );
    }

    #[test]
    fn client_frames() {
        assert_eq!(parse_client_frame(&[0x0a]), Ok(ClientFrame::JoinAck));
        assert_eq!(parse_client_frame(&[0x0c]), Ok(ClientFrame::Leave));
        assert_eq!(parse_client_frame(&[0x12]), Ok(ClientFrame::Ping));
        assert_eq!(
            parse_client_frame(&hex("0d a4 6d6f7665 d4 72 40 91 a1 78 01")),
            Ok(ClientFrame::Data {
                ty: "move".into(),
                payload: &hex("d4 72 40 91 a1 78 01")
            })
        );
        assert_eq!(
            parse_client_frame(&hex("0d cd 0a 02")),
            Ok(ClientFrame::Data {
                ty: MessageType::Number(522),
                payload: &[]
            })
        );
        assert_eq!(
            parse_client_frame(&hex("15 05 a2 6869 c3")),
            Ok(ClientFrame::Request {
                id: 5,
                ty: "hi".into(),
                payload: &[0xc3]
            })
        );
        assert_eq!(parse_client_frame(&[]), Err(FrameError::Empty));
        assert_eq!(parse_client_frame(&[0x07]), Err(FrameError::UnknownCode(7)));
        assert_eq!(
            parse_client_frame(&[0x13]),
            Err(FrameError::InputNotEnabled(0x13))
        );
        assert_eq!(
            parse_client_frame(&hex("0d a4 6d6f")),
            Err(FrameError::BadHeader(1))
        );
        assert_eq!(parse_client_frame(&[0x0d]), Err(FrameError::BadHeader(1)));
        assert_eq!(
            parse_client_frame(&hex("0d c0")),
            Err(FrameError::BadHeader(1))
        );
    }

    #[test]
    fn numbers_match_the_reference_encoding() {
        for (value, bytes) in [
            (0, "00"),
            (127, "7f"),
            (128, "cc 80"),
            (256, "cd 00 01"),
            (65536, "ce 00 00 01 00"),
            (-1, "ff"),
            (-32, "e0"),
            (-33, "d0 df"),
            (-129, "d1 7f ff"),
            (-32769, "d2 ff 7f ff ff"),
        ] {
            let mut out = Vec::new();
            write_number(&mut out, value);
            assert_eq!(out, hex(bytes), "{value}");
        }
    }

    proptest! {
        #[test]
        fn number_round_trip(value in -(1i64 << 53)..(1i64 << 53)) {
            let mut out = Vec::new();
            write_number(&mut out, value);
            let mut pos = 0;
            prop_assert_eq!(read_number(&out, &mut pos), Some(value));
            prop_assert_eq!(pos, out.len());
        }

        #[test]
        fn str_round_trip(s in ".{0,300}") {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            let mut pos = 0;
            prop_assert_eq!(read_str(&out, &mut pos), Some(s));
            prop_assert_eq!(pos, out.len());
        }

        #[test]
        fn any_frame_parses_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_client_frame(&bytes);
        }

        #[test]
        fn data_frames_round_trip(name in "[a-z]{1,40}", n in any::<i32>(), payload in proptest::collection::vec(any::<u8>(), 0..16)) {
            for ty in [MessageType::Name(name), MessageType::Number(i64::from(n))] {
                let frame = encode_room_data(&ty, &payload);
                prop_assert_eq!(
                    parse_client_frame(&frame),
                    Ok(ClientFrame::Data { ty: ty.clone(), payload: &payload })
                );
            }
        }
    }
}
