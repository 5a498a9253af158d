//! MessagePack as the Colyseus SDKs speak it (room-protocol.md §9).
//!
//! Client payloads are packed by msgpackr with its *record* extension on, so
//! [`decode`] understands record definitions (`d4 72 XX` + key array) and
//! record references (a bare `XX` in `0x40..=0x7f` whose slot was defined
//! earlier in the same message), msgpackr's `undefined` (`d4 00 00`), maps
//! with non-string keys and timestamps. Every length is checked against the
//! bytes that remain before anything is allocated, and nesting is bounded by
//! [`MAX_DEPTH`], so no input makes the decoder panic or over-allocate.
//!
//! Server → client payloads are plain msgpack ([`encode`] / [`to_vec`]),
//! which both SDKs decode.

use std::fmt;

use rmp::Marker;
use serde::de::{self, IntoDeserializer};
use serde::Serialize;

/// Deepest nesting of arrays, maps and records [`decode`] accepts.
pub const MAX_DEPTH: usize = 64;

/// A decoded MessagePack value.
///
/// Maps keep their entries in wire order and may have keys of any type.
///
/// # Examples
///
/// ```
/// use roomcast::msgpack::{decode, Value};
///
/// // msgpackr record for `{x: 1}`, as the SDK sends `room.send("move", {x: 1})`.
/// let value = decode(&[0xd4, 0x72, 0x40, 0x91, 0xa1, b'x', 0x01])?;
/// assert_eq!(value.get("x"), Some(&Value::Int(1)));
/// # Ok::<(), roomcast::msgpack::DecodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `nil` (JS `null`).
    Nil,
    /// msgpackr's `undefined` (`d4 00 00`).
    Undefined,
    /// `true` / `false`.
    Bool(bool),
    /// Any integer that fits `i64`.
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    UInt(u64),
    /// `float 32`.
    F32(f32),
    /// `float 64` (JS non-integers and integers beyond 32 bits).
    F64(f64),
    /// A UTF-8 string.
    Str(String),
    /// `bin` (JS `Uint8Array`).
    Bin(Vec<u8>),
    /// An array.
    Array(Vec<Self>),
    /// A map or a msgpackr record, entries in wire order.
    Map(Vec<(Self, Self)>),
    /// A timestamp extension (JS `Date`).
    Timestamp {
        /// Seconds since the Unix epoch.
        seconds: i64,
        /// Nanoseconds within the second.
        nanos: u32,
    },
}

impl Value {
    /// Looks a string key up in a map (`None` for other values).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Self> {
        match self {
            Self::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Self::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as a float if it is a number.
    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::Int(i) => Some(i as f64),
            Self::UInt(u) => Some(u as f64),
            Self::F32(f) => Some(f64::from(f)),
            Self::F64(f) => Some(f),
            _ => None,
        }
    }

    /// The value as a float if it is a finite number: not NaN, not an
    /// infinity (JS `Number.isFinite`).
    ///
    /// # Examples
    ///
    /// ```
    /// use roomcast::msgpack::Value;
    ///
    /// assert_eq!(Value::F32(2.5).as_finite(), Some(2.5));
    /// assert_eq!(Value::Int(3).as_finite(), Some(3.0));
    /// assert_eq!(Value::F64(f64::NAN).as_finite(), None);
    /// assert_eq!(Value::F64(f64::INFINITY).as_finite(), None);
    /// assert_eq!(Value::from("3").as_finite(), None);
    /// ```
    #[must_use]
    pub fn as_finite(&self) -> Option<f64> {
        self.as_f64().filter(|f| f.is_finite())
    }

    /// The value as a string slice if it is a string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// What indexing gives for a key or an index that is not there.
static UNDEFINED: Value = Value::Undefined;

/// A map's entry, as JS reads `message?.key`: [`Value::Undefined`] when
/// the value is not a map or has no such string key (see [`Value::get`]).
///
/// # Examples
///
/// ```
/// use roomcast::msgpack::Value;
///
/// let m = Value::from(serde_json::json!({ "x": 1.5, "tags": ["a"] }));
/// assert_eq!(m["x"].as_f64(), Some(1.5));
/// assert_eq!(m["tags"][0].as_str(), Some("a"));
/// assert_eq!(m["y"], Value::Undefined);
/// assert_eq!(m["x"]["deeper"], Value::Undefined);
/// ```
impl std::ops::Index<&str> for Value {
    type Output = Self;

    fn index(&self, key: &str) -> &Self {
        self.get(key).unwrap_or(&UNDEFINED)
    }
}

/// An array's element, as JS reads `message?.[i]`: [`Value::Undefined`]
/// when the value is not an array or is too short.
impl std::ops::Index<usize> for Value {
    type Output = Self;

    fn index(&self, index: usize) -> &Self {
        match self {
            Self::Array(items) => items.get(index).unwrap_or(&UNDEFINED),
            _ => &UNDEFINED,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Str(s.to_owned())
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

/// A JSON value (room metadata, join options) as a payload: `null` is
/// `Nil`, integers stay integers, objects are maps keyed by strings.
///
/// # Examples
///
/// ```
/// use roomcast::msgpack::Value;
///
/// let value = Value::from(serde_json::json!({ "mode": "duel", "max": 2 }));
/// assert_eq!(serde_json::Value::try_from(&value)?, serde_json::json!({ "mode": "duel", "max": 2 }));
/// # Ok::<(), roomcast::msgpack::ValueError>(())
/// ```
impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Self {
        match json {
            serde_json::Value::Null => Self::Nil,
            serde_json::Value::Bool(b) => Self::Bool(b),
            serde_json::Value::Number(n) => n
                .as_i64()
                .map(Self::Int)
                .or_else(|| n.as_u64().map(Self::UInt))
                .unwrap_or_else(|| Self::F64(n.as_f64().unwrap_or(f64::NAN))),
            serde_json::Value::String(s) => Self::Str(s),
            serde_json::Value::Array(items) => {
                Self::Array(items.into_iter().map(Self::from).collect())
            }
            serde_json::Value::Object(entries) => Self::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (Self::Str(k), Self::from(v)))
                    .collect(),
            ),
        }
    }
}

/// A payload as JSON (for [`RoomCtx::set_metadata`](crate::RoomCtx::set_metadata),
/// say), read as [`from_value`] reads it: `Undefined` is `null`, binary an
/// array of bytes.
///
/// # Errors
///
/// A map key that is not a string, which JSON cannot hold.
impl TryFrom<&Value> for serde_json::Value {
    type Error = ValueError;

    fn try_from(value: &Value) -> Result<Self, ValueError> {
        from_value(value)
    }
}

/// Why a payload could not be decoded; `offset` is where the problem was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid msgpack at byte {offset}: {kind}")]
pub struct DecodeError {
    kind: DecodeErrorKind,
    offset: usize,
}

impl DecodeError {
    #[cold]
    fn new(kind: DecodeErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// Byte offset in the payload.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// The kinds of [`DecodeError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The payload ends in the middle of a value.
    #[error("unexpected end of input")]
    Truncated,
    /// A length is larger than the bytes that remain.
    #[error("length exceeds the remaining bytes")]
    LengthOverflow,
    /// Arrays, maps or records nest deeper than [`MAX_DEPTH`].
    #[error("nesting too deep")]
    TooDeep,
    /// The reserved byte `c1`.
    #[error("reserved marker 0xc1")]
    Reserved,
    /// A string is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// An extension type other than undefined, records and timestamps.
    #[error("unsupported extension type")]
    UnsupportedExt,
    /// A record definition whose slot or key list is malformed.
    #[error("malformed msgpackr record definition")]
    BadRecord,
    /// Bytes remain after the value.
    #[error("trailing bytes after the value")]
    TrailingBytes,
}

/// Decodes exactly one value spanning all of `buf`.
///
/// # Errors
///
/// [`DecodeError`] for truncated or malformed input, lengths beyond the
/// input, nesting beyond [`MAX_DEPTH`], and trailing bytes.
pub fn decode(buf: &[u8]) -> Result<Value, DecodeError> {
    let mut reader = Reader {
        buf,
        pos: 0,
        records: Vec::new(),
    };
    let value = reader.value(MAX_DEPTH)?;
    if reader.pos != buf.len() {
        return Err(DecodeError::new(DecodeErrorKind::TrailingBytes, reader.pos));
    }
    Ok(value)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// msgpackr record slots `0x40..=0x7f` defined so far in this message.
    records: Vec<Option<Vec<String>>>,
}

const RECORD_EXT: i8 = 0x72;
const TIMESTAMP_EXT: i8 = -1;

impl<'a> Reader<'a> {
    fn err(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(kind, self.pos)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.err(DecodeErrorKind::Truncated));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn len16(&mut self) -> Result<usize, DecodeError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn len32(&mut self) -> Result<usize, DecodeError> {
        usize::try_from(u32::from_be_bytes(self.array()?))
            .map_err(|_| self.err(DecodeErrorKind::LengthOverflow))
    }

    /// Checks that `count` items of at least `min_size` bytes each can fit.
    fn check_count(&self, count: usize, min_size: usize) -> Result<(), DecodeError> {
        if count.saturating_mul(min_size) > self.remaining() {
            return Err(self.err(DecodeErrorKind::LengthOverflow));
        }
        Ok(())
    }

    fn record_slot(&self, byte: u8) -> Option<&Vec<String>> {
        let index = usize::from(byte.checked_sub(0x40)?);
        self.records.get(index)?.as_ref()
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let start = self.pos;
        let byte = self.u8()?;
        if (0x40..=0x7f).contains(&byte) {
            if let Some(keys) = self.record_slot(byte) {
                let keys = keys.clone();
                return self.record_values(keys, depth);
            }
        }
        Ok(match Marker::from_u8(byte) {
            Marker::FixPos(n) => Value::Int(i64::from(n)),
            Marker::FixNeg(n) => Value::Int(i64::from(n)),
            Marker::Null => Value::Nil,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::Reserved => {
                return Err(DecodeError::new(DecodeErrorKind::Reserved, start));
            }
            Marker::U8 => Value::Int(i64::from(self.u8()?)),
            Marker::U16 => Value::Int(i64::from(u16::from_be_bytes(self.array()?))),
            Marker::U32 => Value::Int(i64::from(u32::from_be_bytes(self.array()?))),
            Marker::U64 => {
                let v = u64::from_be_bytes(self.array()?);
                i64::try_from(v).map_or(Value::UInt(v), Value::Int)
            }
            Marker::I8 => Value::Int(i64::from(i8::from_be_bytes(self.array()?))),
            Marker::I16 => Value::Int(i64::from(i16::from_be_bytes(self.array()?))),
            Marker::I32 => Value::Int(i64::from(i32::from_be_bytes(self.array()?))),
            Marker::I64 => Value::Int(i64::from_be_bytes(self.array()?)),
            Marker::F32 => Value::F32(f32::from_be_bytes(self.array()?)),
            Marker::F64 => Value::F64(f64::from_be_bytes(self.array()?)),
            Marker::FixStr(n) => self.str(usize::from(n))?,
            Marker::Str8 => {
                let n = usize::from(self.u8()?);
                self.str(n)?
            }
            Marker::Str16 => {
                let n = self.len16()?;
                self.str(n)?
            }
            Marker::Str32 => {
                let n = self.len32()?;
                self.str(n)?
            }
            Marker::Bin8 => {
                let n = usize::from(self.u8()?);
                Value::Bin(self.take(n)?.to_vec())
            }
            Marker::Bin16 => {
                let n = self.len16()?;
                Value::Bin(self.take(n)?.to_vec())
            }
            Marker::Bin32 => {
                let n = self.len32()?;
                Value::Bin(self.take(n)?.to_vec())
            }
            Marker::FixArray(n) => self.array_items(usize::from(n), depth)?,
            Marker::Array16 => {
                let n = self.len16()?;
                self.array_items(n, depth)?
            }
            Marker::Array32 => {
                let n = self.len32()?;
                self.array_items(n, depth)?
            }
            Marker::FixMap(n) => self.map_entries(usize::from(n), depth)?,
            Marker::Map16 => {
                let n = self.len16()?;
                self.map_entries(n, depth)?
            }
            Marker::Map32 => {
                let n = self.len32()?;
                self.map_entries(n, depth)?
            }
            Marker::FixExt1 => self.ext(1, depth)?,
            Marker::FixExt2 => self.ext(2, depth)?,
            Marker::FixExt4 => self.ext(4, depth)?,
            Marker::FixExt8 => self.ext(8, depth)?,
            Marker::FixExt16 => self.ext(16, depth)?,
            Marker::Ext8 => {
                let n = usize::from(self.u8()?);
                self.ext(n, depth)?
            }
            Marker::Ext16 => {
                let n = self.len16()?;
                self.ext(n, depth)?
            }
            Marker::Ext32 => {
                let n = self.len32()?;
                self.ext(n, depth)?
            }
        })
    }

    fn str(&mut self, len: usize) -> Result<Value, DecodeError> {
        let start = self.pos;
        let bytes = self.take(len)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Value::Str(s.to_owned())),
            Err(_) => Err(DecodeError::new(DecodeErrorKind::InvalidUtf8, start)),
        }
    }

    fn nested(&self, depth: usize) -> Result<usize, DecodeError> {
        depth
            .checked_sub(1)
            .ok_or_else(|| self.err(DecodeErrorKind::TooDeep))
    }

    fn array_items(&mut self, len: usize, depth: usize) -> Result<Value, DecodeError> {
        let depth = self.nested(depth)?;
        self.check_count(len, 1)?;
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(self.value(depth)?);
        }
        Ok(Value::Array(items))
    }

    fn map_entries(&mut self, len: usize, depth: usize) -> Result<Value, DecodeError> {
        let depth = self.nested(depth)?;
        self.check_count(len, 2)?;
        let mut entries = Vec::with_capacity(len);
        for _ in 0..len {
            let key = self.value(depth)?;
            let value = self.value(depth)?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }

    fn record_values(&mut self, keys: Vec<String>, depth: usize) -> Result<Value, DecodeError> {
        let depth = self.nested(depth)?;
        self.check_count(keys.len(), 1)?;
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            let value = self.value(depth)?;
            entries.push((Value::Str(key), value));
        }
        Ok(Value::Map(entries))
    }

    fn ext(&mut self, len: usize, depth: usize) -> Result<Value, DecodeError> {
        let start = self.pos;
        let ty = i8::from_be_bytes(self.array()?);
        let data = self.take(len)?;
        match (ty, len) {
            (0, 1) => Ok(Value::Undefined),
            (RECORD_EXT, 1) => self.define_record(data[0], depth, start),
            (TIMESTAMP_EXT, 4) => {
                let seconds = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                Ok(Value::Timestamp {
                    seconds: i64::from(seconds),
                    nanos: 0,
                })
            }
            (TIMESTAMP_EXT, 8) => {
                let mut raw = [0; 8];
                raw.copy_from_slice(data);
                let word = u64::from_be_bytes(raw);
                Ok(Value::Timestamp {
                    // 34-bit seconds always fit an i64.
                    seconds: (word & 0x3_ffff_ffff) as i64,
                    nanos: (word >> 34) as u32,
                })
            }
            (TIMESTAMP_EXT, 12) => {
                let nanos = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                let mut raw = [0; 8];
                raw.copy_from_slice(&data[4..]);
                Ok(Value::Timestamp {
                    seconds: i64::from_be_bytes(raw),
                    nanos,
                })
            }
            _ => Err(DecodeError::new(DecodeErrorKind::UnsupportedExt, start)),
        }
    }

    /// `d4 72 XX` defines record slot `XX`: a key array follows, then the
    /// values of the first object of that shape.
    fn define_record(
        &mut self,
        slot: u8,
        depth: usize,
        start: usize,
    ) -> Result<Value, DecodeError> {
        if !(0x40..=0x7f).contains(&slot) {
            return Err(DecodeError::new(DecodeErrorKind::BadRecord, start));
        }
        let depth = self.nested(depth)?;
        let Value::Array(raw_keys) = self.value(depth)? else {
            return Err(DecodeError::new(DecodeErrorKind::BadRecord, start));
        };
        let mut keys = Vec::with_capacity(raw_keys.len());
        for key in raw_keys {
            let Value::Str(key) = key else {
                return Err(DecodeError::new(DecodeErrorKind::BadRecord, start));
            };
            keys.push(key);
        }
        let index = usize::from(slot - 0x40);
        if self.records.len() <= index {
            self.records.resize(index + 1, None);
        }
        self.records[index] = Some(keys.clone());
        self.record_values(keys, depth + 1)
    }
}

/// Appends the plain msgpack encoding of `value` to `out`.
///
/// `Undefined` is written as msgpackr's `d4 00 00`, maps as maps (any key
/// type), timestamps as timestamp extensions.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    use rmp::encode as w;
    // Writing into a `Vec` cannot fail, so the writers' results carry nothing.
    match value {
        Value::Nil => w::write_nil(out).unwrap_or_default(),
        Value::Undefined => {
            out.extend_from_slice(&[0xd4, 0x00, 0x00]);
        }
        Value::Bool(b) => w::write_bool(out, *b).unwrap_or_default(),
        Value::Int(i) => {
            let _ = w::write_sint(out, *i);
        }
        Value::UInt(u) => {
            let _ = w::write_uint(out, *u);
        }
        Value::F32(f) => {
            let _ = w::write_f32(out, *f);
        }
        Value::F64(f) => {
            let _ = w::write_f64(out, *f);
        }
        Value::Str(s) => {
            let _ = w::write_str(out, s);
        }
        Value::Bin(b) => {
            let _ = w::write_bin(out, b);
        }
        Value::Array(items) => {
            let _ = w::write_array_len(out, len_u32(items.len()));
            for item in items {
                encode(item, out);
            }
        }
        Value::Map(entries) => {
            let _ = w::write_map_len(out, len_u32(entries.len()));
            for (k, v) in entries {
                encode(k, out);
                encode(v, out);
            }
        }
        Value::Timestamp { seconds, nanos } => {
            let _ = w::write_ext_meta(out, 12, TIMESTAMP_EXT);
            out.extend_from_slice(&nanos.to_be_bytes());
            out.extend_from_slice(&seconds.to_be_bytes());
        }
    }
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Serializes `value` as plain msgpack, structs as maps keyed by field name
/// (what the SDKs' `unpack` turns into JS objects).
///
/// # Errors
///
/// Whatever `value`'s `Serialize` impl reports.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    rmp_serde::to_vec_named(value)
}

/// Deserializes a typed value from a decoded [`Value`].
///
/// `Undefined` and `Nil` both read as `None`/unit (and as `Null` into a
/// `serde_json::Value`); into a [`Value`], each stays what it was, so a
/// message sent without a payload reads as `Undefined`. Map keys are read
/// with the key type's own `Deserialize`.
///
/// # Errors
///
/// A [`ValueError`] when the value does not have the shape of `T`.
///
/// # Examples
///
/// ```
/// use roomcast::msgpack::{decode, from_value};
///
/// #[derive(serde::Deserialize)]
/// struct Move { x: i32 }
///
/// let value = decode(&[0xd4, 0x72, 0x40, 0x91, 0xa1, b'x', 0x05])?;
/// let m: Move = from_value(&value)?;
/// assert_eq!(m.x, 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn from_value<'de, T: serde::Deserialize<'de>>(value: &'de Value) -> Result<T, ValueError> {
    T::deserialize(value)
}

/// A [`Value`] did not have the shape a typed handler asked for.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(String);

impl de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

impl Value {
    /// An integral float (what JS sends for integers beyond 32 bits) as an
    /// integer.
    fn as_integral(&self) -> Option<i64> {
        let f = match *self {
            Self::F64(f) => f,
            Self::F32(f) => f64::from(f),
            _ => return None,
        };
        // Exactly representable integers only (|f| < 2^63).
        (f.fract() == 0.0 && f.abs() < 9.223_372_036_854_775e18).then_some(f as i64)
    }

    fn unexpected(&self) -> de::Unexpected<'_> {
        match self {
            Self::Nil | Self::Undefined => de::Unexpected::Unit,
            Self::Bool(b) => de::Unexpected::Bool(*b),
            Self::Int(i) => de::Unexpected::Signed(*i),
            Self::UInt(u) => de::Unexpected::Unsigned(*u),
            Self::F32(f) => de::Unexpected::Float(f64::from(*f)),
            Self::F64(f) => de::Unexpected::Float(*f),
            Self::Str(s) => de::Unexpected::Str(s),
            Self::Bin(b) => de::Unexpected::Bytes(b),
            Self::Array(_) => de::Unexpected::Seq,
            Self::Map(_) => de::Unexpected::Map,
            Self::Timestamp { .. } => de::Unexpected::Other("timestamp"),
        }
    }
}

impl<'de> de::Deserializer<'de> for &'de Value {
    type Error = ValueError;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Nil => visitor.visit_unit(),
            // Absent, as JS `undefined` is: `Value`'s visitor keeps it apart
            // from `Nil`; every other visitor that takes a unit takes this.
            Value::Undefined => visitor.visit_none(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::UInt(u) => visitor.visit_u64(*u),
            Value::F32(f) => visitor.visit_f32(*f),
            Value::F64(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Bin(b) => visitor.visit_borrowed_bytes(b),
            Value::Array(items) => visitor.visit_seq(de::value::SeqDeserializer::new(items.iter())),
            Value::Map(entries) => visitor.visit_map(de::value::MapDeserializer::new(
                entries.iter().map(|(k, v)| (k, v)),
            )),
            Value::Timestamp { seconds, nanos } => {
                // Milliseconds since the epoch, like JS `Date.getTime()`.
                visitor.visit_f64(*seconds as f64 * 1000.0 + f64::from(*nanos) / 1e6)
            }
        }
    }

    fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Nil | Value::Undefined => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            Value::Str(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                visitor.visit_enum(EnumAccess { key, value })
            }
            other => Err(de::Error::invalid_type(other.unexpected(), &"enum")),
        }
    }

    fn deserialize_newtype_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_unit<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Nil | Value::Undefined => visitor.visit_unit(),
            other => Err(de::Error::invalid_type(other.unexpected(), &visitor)),
        }
    }

    fn deserialize_unit_struct<V: de::Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        self.deserialize_unit(visitor)
    }

    // JS has one number type: msgpackr sends integers beyond 32 bits as
    // float64, so an integral float reads as an integer.
    fn deserialize_i64<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.as_integral() {
            Some(i) => visitor.visit_i64(i),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_u64<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.as_integral() {
            Some(i) => visitor.visit_i64(i),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_i32<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_u32<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_i64(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i128 u8 u16 u128 f32 f64 char str string
        bytes byte_buf seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, ValueError> for &'de Value {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

struct EnumAccess<'de> {
    key: &'de Value,
    value: &'de Value,
}

impl<'de> de::EnumAccess<'de> for EnumAccess<'de> {
    type Error = ValueError;
    type Variant = VariantAccess<'de>;

    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, VariantAccess<'de>), ValueError> {
        let tag = seed.deserialize(self.key)?;
        Ok((tag, VariantAccess(self.value)))
    }
}

struct VariantAccess<'de>(&'de Value);

impl<'de> de::VariantAccess<'de> for VariantAccess<'de> {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        Ok(())
    }

    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, ValueError> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: de::Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        de::Deserializer::deserialize_any(self.0, visitor)
    }

    fn struct_variant<V: de::Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        de::Deserializer::deserialize_any(self.0, visitor)
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any msgpack value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::UInt(v), Value::Int))
    }

    fn visit_f32<E>(self, v: f32) -> Result<Value, E> {
        Ok(Value::F32(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::F64(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bin(v.to_vec()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Undefined)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Value::Map(entries))
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            // msgpackr's `undefined` (`d4 00 00`, room-protocol.md §9) for
            // msgpack; `null` for human-readable formats (JSON).
            Self::Undefined if !serializer.is_human_readable() => serializer
                .serialize_newtype_struct(rmp_serde::MSGPACK_EXT_STRUCT_NAME, &UndefinedExt),
            Self::Nil | Self::Undefined => serializer.serialize_unit(),
            Self::Bool(b) => serializer.serialize_bool(*b),
            Self::Int(i) => serializer.serialize_i64(*i),
            Self::UInt(u) => serializer.serialize_u64(*u),
            Self::F32(f) => serializer.serialize_f32(*f),
            Self::F64(f) => serializer.serialize_f64(*f),
            Self::Str(s) => serializer.serialize_str(s),
            Self::Bin(b) => serializer.serialize_bytes(b),
            Self::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Self::Timestamp { seconds, nanos } => {
                serializer.serialize_f64(*seconds as f64 * 1000.0 + f64::from(*nanos) / 1e6)
            }
        }
    }
}

/// msgpackr's `undefined` as `rmp_serde` writes an extension: the tuple of
/// its type (0) and data (`[0]`).
struct UndefinedExt;

impl Serialize for UndefinedExt {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        struct Data;
        impl Serialize for Data {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(&[0])
            }
        }
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&0i8)?;
        tuple.serialize_element(&Data)?;
        tuple.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex;
    use proptest::prelude::*;

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(
            entries
                .iter()
                .map(|(k, v)| (Value::from(*k), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn records_from_the_spec() {
        assert_eq!(
            decode(&hex("d4 72 40 92 a1 61 a1 62 01 a1 78")).unwrap(),
            map(&[("a", Value::Int(1)), ("b", "x".into())])
        );
        assert_eq!(
            decode(&hex("92 d4 72 40 91 a1 61 01 40 02")).unwrap(),
            Value::Array(vec![
                map(&[("a", Value::Int(1))]),
                map(&[("a", Value::Int(2))])
            ])
        );
        assert_eq!(decode(&hex("d4 72 40 90")).unwrap(), Value::Map(vec![]));
        assert_eq!(
            decode(&hex("d4 72 40 91 a1 61 d4 72 41 91 a1 62 01")).unwrap(),
            map(&[("a", map(&[("b", Value::Int(1))]))])
        );
    }

    #[test]
    fn undefined_slot_byte_is_a_fixint() {
        assert_eq!(decode(&[0x41]).unwrap(), Value::Int(0x41));
        assert_eq!(
            decode(&hex("92 d4 72 40 91 a1 61 01 41")).unwrap(),
            Value::Array(vec![map(&[("a", Value::Int(1))]), Value::Int(0x41)])
        );
    }

    #[test]
    fn scalars() {
        assert_eq!(decode(&hex("d4 00 00")).unwrap(), Value::Undefined);
        assert_eq!(decode(&hex("c0")).unwrap(), Value::Nil);
        assert_eq!(
            decode(&hex("cb 3ff8000000000000")).unwrap(),
            Value::F64(1.5)
        );
        assert_eq!(decode(&hex("cd 01 00")).unwrap(), Value::Int(256));
        assert_eq!(decode(&hex("d1 ff 7f")).unwrap(), Value::Int(-129));
        assert_eq!(
            decode(&hex("cf ffffffffffffffff")).unwrap(),
            Value::UInt(u64::MAX)
        );
        assert_eq!(decode(&hex("c4 02 01 02")).unwrap(), Value::Bin(vec![1, 2]));
        assert_eq!(
            decode(&hex("d6 ff 00 00 00 10")).unwrap(),
            Value::Timestamp {
                seconds: 16,
                nanos: 0
            }
        );
        assert_eq!(
            decode(&hex("81 01 a1 78")).unwrap(),
            Value::Map(vec![(Value::Int(1), "x".into())])
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        let kind = |bytes: &str| decode(&hex(bytes)).unwrap_err().kind();
        assert_eq!(kind(""), DecodeErrorKind::Truncated);
        assert_eq!(kind("c1"), DecodeErrorKind::Reserved);
        assert_eq!(kind("dd ffffffff"), DecodeErrorKind::LengthOverflow);
        assert_eq!(kind("df ffffffff 01"), DecodeErrorKind::LengthOverflow);
        assert_eq!(kind("db ffffffff"), DecodeErrorKind::Truncated);
        assert_eq!(kind("a2 ff fe"), DecodeErrorKind::InvalidUtf8);
        assert_eq!(kind("d4 05 00"), DecodeErrorKind::UnsupportedExt);
        assert_eq!(kind("d4 72 20 90"), DecodeErrorKind::BadRecord);
        assert_eq!(kind("d4 72 40 91 01 02"), DecodeErrorKind::BadRecord);
        assert_eq!(kind("d4 72 40 91 a1 61"), DecodeErrorKind::LengthOverflow);
        assert_eq!(
            kind("92 d4 72 40 91 a1 61 01 40"),
            DecodeErrorKind::LengthOverflow
        );
        assert_eq!(kind("01 02"), DecodeErrorKind::TrailingBytes);
        let deep = vec![0x91; MAX_DEPTH + 1];
        assert_eq!(decode(&deep).unwrap_err().kind(), DecodeErrorKind::TooDeep);
        // Records nest through their values, too.
        let mut deep_records = Vec::new();
        for _ in 0..=MAX_DEPTH {
            deep_records.extend_from_slice(&hex("d4 72 40 91 a1 61"));
        }
        deep_records.push(0);
        assert_eq!(
            decode(&deep_records).unwrap_err().kind(),
            DecodeErrorKind::TooDeep
        );
    }

    #[test]
    fn typed_structs() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Chat {
            text: String,
            to: Option<String>,
            kind: Kind,
        }
        #[derive(serde::Deserialize, Debug, PartialEq)]
        #[serde(rename_all = "lowercase")]
        enum Kind {
            Public,
        }
        // {text: "hi", to: undefined, kind: "public"} as a record.
        let value = decode(&hex(
            "d4 72 40 93 a4 74657874 a2 746f a4 6b696e64 a2 6869 d4 00 00 a6 7075626c6963",
        ))
        .unwrap();
        let chat: Chat = from_value(&value).unwrap();
        assert_eq!(
            chat,
            Chat {
                text: "hi".into(),
                to: None,
                kind: Kind::Public
            }
        );
        assert!(from_value::<Chat>(&Value::Int(1)).is_err());
        // Integers beyond 32 bits arrive as float64.
        assert_eq!(
            from_value::<i64>(&Value::F64(1_099_511_627_776.0)).unwrap(),
            1 << 40
        );
        assert_eq!(from_value::<u32>(&Value::F64(7.0)).unwrap(), 7);
        assert!(from_value::<i64>(&Value::F64(1.5)).is_err());
        assert!(from_value::<u8>(&Value::F64(300.0)).is_err());
        assert_eq!(from_value::<f64>(&Value::F64(1.5)).unwrap(), 1.5);
    }

    #[test]
    fn server_encoding_is_plain_msgpack() {
        #[derive(serde::Serialize)]
        struct Chat<'a> {
            text: &'a str,
            n: u8,
        }
        assert_eq!(
            to_vec(&Chat { text: "hi", n: 1 }).unwrap(),
            hex("82 a4 74657874 a2 6869 a1 6e 01")
        );
        let mut out = Vec::new();
        encode(&Value::Undefined, &mut out);
        assert_eq!(out, hex("d4 00 00"));
    }

    #[test]
    fn json_and_payload_values_convert_both_ways() {
        let json = serde_json::json!({
            "a": [1, -2, 18_446_744_073_709_551_615_u64, 1.5, "s", true, null],
            "b": {},
        });
        let value = Value::from(json.clone());
        let Value::Map(entries) = &value else {
            panic!("an object is a map: {value:?}");
        };
        assert_eq!(entries[0].0, Value::from("a"));
        assert_eq!(
            entries[0].1,
            Value::Array(vec![
                Value::Int(1),
                Value::Int(-2),
                Value::UInt(u64::MAX),
                Value::F64(1.5),
                Value::from("s"),
                Value::Bool(true),
                Value::Nil,
            ])
        );
        assert_eq!(serde_json::Value::try_from(&value).unwrap(), json);
        assert_eq!(
            serde_json::Value::try_from(&Value::Undefined).unwrap(),
            serde_json::Value::Null
        );
        let int_key = Value::Map(vec![(Value::Int(1), Value::Nil)]);
        assert!(serde_json::Value::try_from(&int_key).is_err());
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            Just(Value::Undefined),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            (i64::MAX as u64 + 1..=u64::MAX).prop_map(Value::UInt),
            any::<f64>()
                .prop_filter("NaN != NaN", |f| !f.is_nan())
                .prop_map(Value::F64),
            ".{0,40}".prop_map(Value::Str),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bin),
            (any::<i64>(), 0..1_000_000_000u32)
                .prop_map(|(seconds, nanos)| Value::Timestamp { seconds, nanos }),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::vec((inner.clone(), inner), 0..8).prop_map(Value::Map),
            ]
        })
    }

    #[test]
    fn undefined_stays_apart_from_nil() {
        // A typed handler of `Value` sees no payload as no payload.
        assert_eq!(
            from_value::<Value>(&Value::Undefined).unwrap(),
            Value::Undefined
        );
        assert_eq!(from_value::<Value>(&Value::Nil).unwrap(), Value::Nil);
        // Every other reader of an absent value reads a unit or a `None`.
        from_value::<()>(&Value::Undefined).unwrap();
        assert_eq!(from_value::<Option<i32>>(&Value::Undefined).unwrap(), None);
        assert_eq!(
            from_value::<serde_json::Value>(&Value::Undefined).unwrap(),
            serde_json::Value::Null
        );
        from_value::<serde::de::IgnoredAny>(&Value::Undefined).unwrap();
        assert!(from_value::<String>(&Value::Undefined).is_err());
        // msgpack writes it as msgpackr does, JSON as null.
        assert_eq!(to_vec(&Value::Undefined).unwrap(), hex("d4 00 00"));
        let inside = map(&[("a", Value::Undefined), ("b", Value::Nil)]);
        assert_eq!(decode(&to_vec(&inside).unwrap()).unwrap(), inside);
        assert_eq!(
            serde_json::to_value(&inside).unwrap(),
            serde_json::json!({ "a": null, "b": null })
        );
    }

    proptest! {
        #[test]
        fn round_trip(value in arb_value()) {
            let mut out = Vec::new();
            encode(&value, &mut out);
            prop_assert_eq!(decode(&out).unwrap(), value);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn records_with_arbitrary_tails_never_panic(
            tail in proptest::collection::vec(any::<u8>(), 0..64)
        ) {
            let mut bytes = hex("92 d4 72 40 92 a1 61 a1 62 01 02");
            bytes.extend_from_slice(&tail);
            let _ = decode(&bytes);
        }
    }
}
