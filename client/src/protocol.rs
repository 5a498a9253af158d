//! Frames of the room protocol, client side (spec `room-protocol.md` §4–§6):
//! parsing what a server sends, building what the client sends. Untrusted
//! bytes give `Err`, never a panic.

use std::fmt;

use roomcast_schema::wire::{encode_number, encode_str, DecodeError, DecodeErrorKind, Reader};

/// JOIN_ROOM (handshake from the server; one-byte ack from the client).
pub(crate) const JOIN_ROOM: u8 = 10;
/// ERROR: `varint code | str message`.
pub(crate) const ERROR: u8 = 11;
/// LEAVE_ROOM (both ways).
pub(crate) const LEAVE_ROOM: u8 = 12;
/// ROOM_DATA: `type | msgpack`.
pub(crate) const ROOM_DATA: u8 = 13;
/// ROOM_STATE: a full state.
pub(crate) const ROOM_STATE: u8 = 14;
/// ROOM_STATE_PATCH.
pub(crate) const ROOM_STATE_PATCH: u8 = 15;
/// ROOM_DATA_BYTES: `type | raw bytes`.
pub(crate) const ROOM_DATA_BYTES: u8 = 17;
/// PING (0.18).
pub(crate) const PING: u8 = 18;
/// ROOM_REQUEST (0.18): `varint id | type | msgpack`.
pub(crate) const ROOM_REQUEST: u8 = 21;
/// ROOM_RESPONSE (0.18): `varint id | u8 status | msgpack`.
pub(crate) const ROOM_RESPONSE: u8 = 22;

/// ROOM_RESPONSE status: the handler's value.
pub(crate) const STATUS_OK: u8 = 0;
/// ROOM_RESPONSE status: rejected.
pub(crate) const STATUS_REJECTED: u8 = 1;

/// Low 5 bits of the first byte: the protocol code (0.18, §4).
pub(crate) const CODE_MASK: u8 = 0x1f;
/// TIMED modifier: 8 bytes of clock data follow the code byte (§6.3).
const TIMED: u8 = 0x80;
/// UNRELIABLE modifier: a 2-byte sequence number follows (§6.3).
const UNRELIABLE: u8 = 0x40;

/// Close codes (spec §7).
pub(crate) mod close_code {
    /// No close frame, or the connection was lost.
    pub(crate) const ABNORMAL_CLOSURE: u16 = 1006;
    /// The client asked to leave.
    pub(crate) const CONSENTED: u16 = 4000;
    /// Automatic reconnection gave up.
    pub(crate) const FAILED_TO_RECONNECT: u16 = 4003;
    /// A closing without a status code.
    pub(crate) const NO_STATUS_RECEIVED: u16 = 1005;
    /// Normal closure (a non-consented leave of this client).
    pub(crate) const NORMAL_CLOSURE: u16 = 1000;

    /// Codes after which the 0.18 SDK reconnects by itself: GOING_AWAY,
    /// NO_STATUS_RECEIVED, ABNORMAL_CLOSURE, MAY_TRY_RECONNECT.
    pub(crate) fn is_drop(code: u16) -> bool {
        matches!(code, 1001 | 1005 | 1006 | 4010)
    }
}

/// The type of a room message: a name or a number (spec §5.5).
///
/// # Examples
///
/// ```
/// use roomcast_client::MessageType;
/// assert_eq!(MessageType::from("chat"), MessageType::Name("chat".into()));
/// assert_eq!(MessageType::from(7), MessageType::Number(7));
/// assert_eq!(MessageType::from(7).to_string(), "7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// A string type, as in `room.send("move", …)`. An empty name is read
    /// by the receiver as a number (the protocol cannot carry it).
    Name(String),
    /// A numeric type, as in `room.send(7, …)`.
    Number(i64),
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Number(n) => write!(f, "{n}"),
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

impl From<&String> for MessageType {
    fn from(name: &String) -> Self {
        Self::Name(name.clone())
    }
}

impl From<i64> for MessageType {
    fn from(n: i64) -> Self {
        Self::Number(n)
    }
}

impl From<i32> for MessageType {
    fn from(n: i32) -> Self {
        Self::Number(n.into())
    }
}

impl From<u32> for MessageType {
    fn from(n: u32) -> Self {
        Self::Number(n.into())
    }
}

impl From<u8> for MessageType {
    fn from(n: u8) -> Self {
        Self::Number(n.into())
    }
}

/// The JOIN_ROOM handshake (0.18 layout, spec §5.1).
#[derive(Debug)]
pub(crate) struct JoinRoom<'a> {
    /// The raw reconnection token (without the room id).
    pub(crate) token: &'a str,
    /// The serializer id (`"schema"` or `"none"`).
    pub(crate) serializer: &'a str,
    /// Reflection bytes; empty when the server skipped them.
    pub(crate) reflection: &'a [u8],
}

/// A frame from the server.
#[derive(Debug)]
pub(crate) enum ServerFrame<'a> {
    Join(JoinRoom<'a>),
    Error {
        code: u32,
        message: String,
    },
    Leave,
    State(&'a [u8]),
    Patch(&'a [u8]),
    Data {
        ty: MessageType,
        payload: &'a [u8],
    },
    Bytes {
        ty: MessageType,
        bytes: &'a [u8],
    },
    Ping,
    Response {
        id: u32,
        status: u8,
        payload: &'a [u8],
    },
    /// A code this client does not handle.
    Other,
}

#[cold]
fn bad(offset: usize) -> DecodeError {
    Reader::error_at(offset, DecodeErrorKind::UnexpectedEof)
}

/// Parses one frame.
pub(crate) fn parse(frame: &[u8]) -> Result<ServerFrame<'_>, DecodeError> {
    let mut r = Reader::new(frame);
    let first = r.read_u8()?;
    let code = first & CODE_MASK;
    if first & TIMED != 0 {
        r.read_bytes(8)?;
    }
    Ok(match code {
        JOIN_ROOM => {
            let len = usize::from(r.read_u8()?);
            let token = utf8(&mut r, len)?;
            let len = usize::from(r.read_u8()?);
            let serializer = utf8(&mut r, len)?;
            let reflection = if r.is_empty() {
                &[][..]
            } else {
                let at = r.offset();
                let len = r.decode_number()?;
                if !(0.0..=r.remaining() as f64).contains(&len) || len.fract() != 0.0 {
                    return Err(Reader::error_at(
                        at,
                        DecodeErrorKind::Malformed("handshake length past the end of the frame"),
                    ));
                }
                // (Trailing sections, input reflection and options, are
                // skipped: this client sends no inputs.)
                r.read_bytes(len as usize)?
            };
            ServerFrame::Join(JoinRoom {
                token,
                serializer,
                reflection,
            })
        }
        ERROR => {
            let code = r.decode_number()?;
            let code = if code.is_finite() && code >= 0.0 {
                code.min(f64::from(u32::MAX)) as u32
            } else {
                0
            };
            let message = if r.is_empty() {
                String::new()
            } else {
                r.decode_str()?.to_owned()
            };
            ServerFrame::Error { code, message }
        }
        LEAVE_ROOM => ServerFrame::Leave,
        ROOM_STATE => ServerFrame::State(r.read_bytes(r.remaining())?),
        ROOM_STATE_PATCH => {
            if first & UNRELIABLE != 0 {
                r.read_bytes(2)?;
            }
            ServerFrame::Patch(r.read_bytes(r.remaining())?)
        }
        ROOM_DATA => {
            let ty = read_type(&mut r)?;
            ServerFrame::Data {
                ty,
                payload: r.read_bytes(r.remaining())?,
            }
        }
        ROOM_DATA_BYTES => {
            let ty = read_type(&mut r)?;
            ServerFrame::Bytes {
                ty,
                bytes: r.read_bytes(r.remaining())?,
            }
        }
        PING => ServerFrame::Ping,
        ROOM_RESPONSE => {
            let id = r.decode_varint()?;
            let status = r.read_u8()?;
            ServerFrame::Response {
                id,
                status,
                payload: r.read_bytes(r.remaining())?,
            }
        }
        _ => ServerFrame::Other,
    })
}

fn utf8<'a>(r: &mut Reader<'a>, len: usize) -> Result<&'a str, DecodeError> {
    let at = r.offset();
    let bytes = r.read_bytes(len)?;
    std::str::from_utf8(bytes).map_err(|_| Reader::error_at(at, DecodeErrorKind::InvalidUtf8))
}

/// A message type: a string when the first byte is a str header
/// (`stringCheck` of the SDK), else a number.
fn read_type(r: &mut Reader<'_>) -> Result<MessageType, DecodeError> {
    let at = r.offset();
    match r.peek() {
        Some(0xa1..=0xbf | 0xd9..=0xdb) => Ok(MessageType::Name(r.decode_str()?.to_owned())),
        Some(_) => {
            let n = r.decode_number()?;
            if n.is_finite() && n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 {
                Ok(MessageType::Number(n as i64))
            } else {
                Err(Reader::error_at(
                    at,
                    DecodeErrorKind::Malformed("message type is not an integer"),
                ))
            }
        }
        None => Err(bad(at)),
    }
}

/// Writes a frame header: protocol code and message type.
pub(crate) fn header(out: &mut Vec<u8>, code: u8, ty: &MessageType) {
    out.push(code);
    write_type(out, ty);
}

/// Writes a ROOM_REQUEST header: code, request id, message type.
pub(crate) fn request_header(out: &mut Vec<u8>, id: u32, ty: &MessageType) {
    out.push(ROOM_REQUEST);
    encode_number(out, f64::from(id));
    write_type(out, ty);
}

fn write_type(out: &mut Vec<u8>, ty: &MessageType) {
    match ty {
        MessageType::Name(name) => encode_str(out, name),
        MessageType::Number(n) => encode_number(out, *n as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_room_with_reflection_and_sections() {
        let frame = [
            10, 3, b'a', b'b', b'c', 6, b's', b'c', b'h', b'e', b'm', b'a', 2, 0xff, 0x01, 1, 1, 9,
        ];
        let ServerFrame::Join(j) = parse(&frame).unwrap() else {
            panic!("join");
        };
        assert_eq!(
            (j.token, j.serializer, j.reflection),
            ("abc", "schema", &[0xff, 1][..])
        );
    }

    #[test]
    fn error_frame() {
        let frame = [0x0b, 0xcd, 0x0a, 0x02, 0xa2, b'n', b'o'];
        let ServerFrame::Error { code, message } = parse(&frame).unwrap() else {
            panic!("error");
        };
        assert_eq!((code, message.as_str()), (522, "no"));
    }

    #[test]
    fn data_types() {
        let mut out = Vec::new();
        header(&mut out, ROOM_DATA, &MessageType::Number(7));
        out.extend([0x92, 1, 2]);
        let ServerFrame::Data { ty, payload } = parse(&out).unwrap() else {
            panic!("data");
        };
        assert_eq!((ty, payload), (MessageType::Number(7), &[0x92, 1, 2][..]));
        out.clear();
        header(&mut out, ROOM_DATA_BYTES, &MessageType::from("bin"));
        out.extend([1, 2, 3]);
        assert_eq!(out, [0x11, 0xa3, b'b', b'i', b'n', 1, 2, 3]);
    }

    #[test]
    fn responses() {
        // Request 5 OK `{ok: true}` (spec §5.8).
        let frame = [0x16, 0x05, 0x00, 0xde, 0x00, 0x01, 0xa2, b'o', b'k', 0xc3];
        let ServerFrame::Response {
            id,
            status,
            payload,
        } = parse(&frame).unwrap()
        else {
            panic!("response");
        };
        assert_eq!((id, status, payload.len()), (5, 0, 7));
        let mut out = Vec::new();
        request_header(&mut out, 5, &MessageType::from("ask"));
        assert_eq!(out, [0x15, 0x05, 0xa3, b'a', b's', b'k']);
    }

    proptest::proptest! {
        /// Any bytes: a frame or an error, never a panic; a message type
        /// written is read back.
        #[test]
        fn any_bytes_parse_or_fail(first in 0u8..=255, rest in proptest::collection::vec(0u8..=255, 0..64)) {
            let mut frame = vec![first];
            frame.extend(rest);
            let _ = parse(&frame);
        }

        #[test]
        fn message_types_round_trip(name in "[a-z]{1,40}", n in -1_000_000i64..1_000_000) {
            for ty in [MessageType::Name(name), MessageType::Number(n)] {
                let mut out = Vec::new();
                header(&mut out, ROOM_DATA, &ty);
                let ServerFrame::Data { ty: read, payload } = parse(&out).unwrap() else {
                    panic!("data");
                };
                proptest::prop_assert_eq!((read, payload.len()), (ty, 0));
            }
        }
    }

    #[test]
    fn truncated_frames_are_errors() {
        for frame in [
            &[][..],
            &[10],
            &[10, 5, b'a'],
            &[10, 0, 0, 0x05],
            &[11],
            &[13],
            &[13, 0xa5, b'x'],
            &[0x8e, 1, 2],
        ] {
            assert!(parse(frame).is_err(), "{frame:?}");
        }
    }
}
