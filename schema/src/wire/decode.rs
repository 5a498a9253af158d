//! Readers for every primitive encoding (spec `schema-wire.md` §2).
//!
//! [`Reader`] is a bounds-checked cursor over one message body: every read
//! returns `Result<_, DecodeError>` and never reads past the end, and every
//! length is checked against the remaining bytes before anything is
//! allocated. Errors carry the byte offset where the bad item starts.
//!
//! The readers are stricter than the reference decoder (spec §13): a bad
//! number prefix, a string header that is not a string header, a truncated
//! value or invalid UTF-8 are errors here, where the reference logs and
//! carries on.

use std::fmt;

/// Why bytes could not be decoded, and where.
///
/// Small on purpose (`Copy`, no allocation): a kind and the byte offset (from
/// the start of the message body) of the item that failed.
///
/// # Examples
///
/// ```
/// use roomcast_schema::wire::{DecodeErrorKind, Reader};
/// let mut r = Reader::new(&[0xcd, 0x01]); // uint16 prefix, one byte missing
/// let err = r.decode_number().unwrap_err();
/// assert_eq!(err.kind(), DecodeErrorKind::UnexpectedEof);
/// assert_eq!(err.offset(), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct DecodeError {
    kind: DecodeErrorKind,
    offset: usize,
}

impl DecodeError {
    /// An error of `kind` at byte `offset`.
    #[cold]
    #[must_use]
    pub fn new(kind: DecodeErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }

    /// What went wrong.
    #[must_use]
    pub fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// Byte offset, from the start of the decoded buffer, of the item that
    /// could not be decoded.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// The problem a [`DecodeError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ends in the middle of an item.
    UnexpectedEof,
    /// A `number` starts with a byte that is no number prefix (§2.2).
    InvalidNumber(u8),
    /// A refId, index, type id or length is not an integer in `0..=u32::MAX`.
    InvalidIndex,
    /// A string starts with a byte that is no string header (§2.3).
    InvalidStringHeader(u8),
    /// A string's bytes are not valid UTF-8.
    InvalidUtf8,
    /// A `boolean` byte is neither `00` nor `01`.
    InvalidBoolean(u8),
    /// `ff refId` or a child reference names a refId the decoder does not
    /// hold (never added, or already garbage-collected).
    UnknownRefId(u32),
    /// A Schema operation names a field index the type does not define.
    UnknownField(u8),
    /// An operation byte that is not valid for the current structure.
    InvalidOperation(u8),
    /// A `TYPE_ID` names no known type, or a type that does not extend the
    /// declared one.
    InvalidTypeId(u32),
    /// A child reference points at a structure of another kind or type than
    /// the field declares.
    TypeMismatch,
    /// A `REPLACE` of a map index the map does not hold.
    UnknownMapIndex(u32),
    /// Well-formed bytes that this decoder refuses; the text says why.
    Unsupported(&'static str),
    /// Malformed input not covered by the other kinds; the text says why.
    Malformed(&'static str),
    /// A size or nesting limit was exceeded; the text names it.
    LimitExceeded(&'static str),
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnexpectedEof => f.write_str("unexpected end of input"),
            Self::InvalidNumber(b) => write!(f, "invalid number prefix {b:#04x}"),
            Self::InvalidIndex => f.write_str("expected an integer in 0..=4294967295"),
            Self::InvalidStringHeader(b) => write!(f, "invalid string header {b:#04x}"),
            Self::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            Self::InvalidBoolean(b) => write!(f, "invalid boolean byte {b:#04x}"),
            Self::UnknownRefId(id) => write!(f, "refId {id} not found"),
            Self::UnknownField(i) => write!(f, "field index {i} is not defined on this type"),
            Self::InvalidOperation(b) => write!(f, "operation {b:#04x} is not valid here"),
            Self::InvalidTypeId(t) => write!(
                f,
                "type id {t} is unknown or not a subtype of the declared type"
            ),
            Self::TypeMismatch => {
                f.write_str("child reference has another type than the field declares")
            }
            Self::UnknownMapIndex(i) => write!(f, "map index {i} not found"),
            Self::Unsupported(what) => write!(f, "unsupported: {what}"),
            Self::Malformed(what) => write!(f, "malformed input: {what}"),
            Self::LimitExceeded(what) => write!(f, "limit exceeded: {what}"),
        }
    }
}

/// A bounds-checked cursor over a message body.
///
/// # Examples
///
/// ```
/// use roomcast_schema::wire::Reader;
/// let mut r = Reader::new(&[0xa5, b'h', b'e', b'l', b'l', b'o', 0xcc, 0x80]);
/// assert_eq!(r.decode_str()?, "hello");
/// assert_eq!(r.decode_number()?, 128.0);
/// assert!(r.is_empty());
/// # Ok::<(), roomcast_schema::wire::DecodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    #[inline]
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Offset of the next byte to read.
    #[inline]
    #[must_use]
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Moves the cursor back to an offset returned by [`Reader::offset`].
    ///
    /// # Panics
    ///
    /// If `offset` is past the end of the buffer.
    #[inline]
    pub fn seek(&mut self, offset: usize) {
        assert!(offset <= self.buf.len(), "seek past the end");
        self.pos = offset;
    }

    /// Skips `n` bytes (at most to the end of the buffer).
    #[inline]
    pub(crate) fn skip(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    /// Moves the cursor to `offset` (at most to the end of the buffer).
    #[inline]
    pub(crate) fn set_offset(&mut self, offset: usize) {
        self.pos = offset.min(self.buf.len());
    }

    /// Bytes left to read.
    #[inline]
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether every byte has been read.
    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The whole buffer this reader walks.
    #[inline]
    #[must_use]
    pub fn buffer(&self) -> &'a [u8] {
        self.buf
    }

    /// The next byte, without consuming it.
    #[inline]
    #[must_use]
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// An error of `kind` at byte `offset`.
    #[cold]
    #[inline(never)]
    #[must_use]
    pub fn error_at(offset: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(kind, offset)
    }

    #[cold]
    #[inline(never)]
    fn eof(&self, start: usize) -> DecodeError {
        DecodeError::new(DecodeErrorKind::UnexpectedEof, start)
    }

    /// Reads one byte.
    ///
    /// # Errors
    ///
    /// [`DecodeErrorKind::UnexpectedEof`] at the end of input.
    #[inline]
    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.eof(self.pos)),
        }
    }

    /// Reads `N` bytes; an error at `start` if fewer remain.
    #[inline(always)]
    fn read_array_from<const N: usize>(&mut self, start: usize) -> Result<[u8; N], DecodeError> {
        match self.buf.get(self.pos..self.pos + N) {
            Some(bytes) => {
                let mut out = [0u8; N];
                out.copy_from_slice(bytes);
                self.pos += N;
                Ok(out)
            }
            None => Err(self.eof(start)),
        }
    }

    /// Reads `N` raw bytes.
    ///
    /// # Errors
    ///
    /// [`DecodeErrorKind::UnexpectedEof`] if fewer than `N` bytes remain.
    #[inline]
    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.read_array_from(self.pos)
    }

    /// Reads `len` raw bytes.
    ///
    /// # Errors
    ///
    /// [`DecodeErrorKind::UnexpectedEof`] if fewer than `len` bytes remain.
    #[inline]
    pub fn read_bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.remaining() {
            return Err(self.eof(self.pos));
        }
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    /// Reads a `boolean`: `00` or `01`.
    ///
    /// # Errors
    ///
    /// End of input, or [`DecodeErrorKind::InvalidBoolean`] for any other
    /// byte (the reference reads every non-zero byte as `true`).
    #[inline]
    pub fn decode_bool(&mut self) -> Result<bool, DecodeError> {
        let start = self.pos;
        match self.read_u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(Self::error_at(start, DecodeErrorKind::InvalidBoolean(b))),
        }
    }

    /// Reads an `int8`.
    ///
    /// # Errors
    ///
    /// End of input.
    #[inline]
    pub fn decode_i8(&mut self) -> Result<i8, DecodeError> {
        Ok(i8::from_le_bytes(self.read_array()?))
    }

    /// Reads a `uint8`.
    ///
    /// # Errors
    ///
    /// End of input.
    #[inline]
    pub fn decode_u8(&mut self) -> Result<u8, DecodeError> {
        self.read_u8()
    }

    /// Reads a little-endian `int16`.
    ///
    /// # Errors
    ///
    /// End of input.
    #[inline]
    pub fn decode_i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_le_bytes(self.read_array()?))
    }

    /// Reads a little-endian `uint16`.
    ///
    /// # Errors
    ///
    /// End of input.
    #[inline]
    pub fn decode_u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.read_array()?))
    }

    /// Reads a little-endian `int32`.
    ///
    /// # Errors
    ///
    /// End of input.
    #[inline]
    pub fn decode_i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_le_bytes(self.read_array()?))
    }

    /// Reads a little-endian `uint32`.
    ///
    /// # Errors
    ///
    /// End of input.
    #[inline]
    pub fn decode_u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.read_array()?))
    }

    /// Reads 8 little-endian bytes as a signed integer (`int64`, `bigint64`).
    ///
    /// # Errors
    ///
    /// End of input.
    #[inline]
    pub fn decode_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.read_array()?))
    }

    /// Reads 8 little-endian bytes as an unsigned integer (`uint64`,
    /// `biguint64`).
    ///
    /// # Errors
    ///
    /// End of input.
    #[inline]
    pub fn decode_u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.read_array()?))
    }

    /// Reads an IEEE-754 binary32.
    ///
    /// # Errors
    ///
    /// End of input.
    #[inline]
    pub fn decode_f32(&mut self) -> Result<f32, DecodeError> {
        Ok(f32::from_le_bytes(self.read_array()?))
    }

    /// Reads an IEEE-754 binary64.
    ///
    /// # Errors
    ///
    /// End of input.
    #[inline]
    pub fn decode_f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.read_array()?))
    }

    /// Reads a self-describing `number` in any of the forms of §2.2
    /// (fixints, `cc`..`cf`, `d0`..`d3`, `ca`, `cb`). 64-bit forms are
    /// rounded to the nearest `f64`, as JavaScript does.
    ///
    /// # Errors
    ///
    /// End of input, or [`DecodeErrorKind::InvalidNumber`] for a byte that
    /// starts no number.
    #[inline]
    pub fn decode_number(&mut self) -> Result<f64, DecodeError> {
        let start = self.pos;
        let prefix = self.read_u8()?;
        let v = match prefix {
            0x00..=0x7f => f64::from(prefix),
            0xe0..=0xff => f64::from(prefix as i8),
            0xcc => f64::from(self.read_array_from::<1>(start)?[0]),
            0xcd => f64::from(u16::from_le_bytes(self.read_array_from(start)?)),
            0xce => f64::from(u32::from_le_bytes(self.read_array_from(start)?)),
            0xcf => u64::from_le_bytes(self.read_array_from(start)?) as f64,
            0xd0 => f64::from(self.read_array_from::<1>(start)?[0] as i8),
            0xd1 => f64::from(i16::from_le_bytes(self.read_array_from(start)?)),
            0xd2 => f64::from(i32::from_le_bytes(self.read_array_from(start)?)),
            0xd3 => i64::from_le_bytes(self.read_array_from(start)?) as f64,
            0xca => f64::from(f32::from_le_bytes(self.read_array_from(start)?)),
            0xcb => f64::from_le_bytes(self.read_array_from(start)?),
            _ => {
                return Err(Self::error_at(
                    start,
                    DecodeErrorKind::InvalidNumber(prefix),
                ))
            }
        };
        Ok(v)
    }

    /// Reads a refId, collection index, type id or length: a `number` in
    /// any form whose value is an integer in `0..=u32::MAX`.
    ///
    /// # Errors
    ///
    /// As [`Reader::decode_number`], or [`DecodeErrorKind::InvalidIndex`]
    /// for a negative, fractional or too large value.
    #[inline]
    pub fn decode_varint(&mut self) -> Result<u32, DecodeError> {
        let start = self.pos;
        let buf = self.buf;
        // Fast paths: positive fixint, by far the most common form, then
        // the unsigned forms.
        match buf.get(start) {
            Some(&b) if b < 0x80 => {
                self.pos = start + 1;
                return Ok(u32::from(b));
            }
            Some(0xcc) => {
                if let Some(&v) = buf.get(start + 1) {
                    self.pos = start + 2;
                    return Ok(u32::from(v));
                }
            }
            Some(0xcd) => {
                if let Some(&[a, b]) = buf.get(start + 1..start + 3) {
                    self.pos = start + 3;
                    return Ok(u32::from(u16::from_le_bytes([a, b])));
                }
            }
            Some(0xce) => {
                if let Some(&[a, b, c, d]) = buf.get(start + 1..start + 5) {
                    self.pos = start + 5;
                    return Ok(u32::from_le_bytes([a, b, c, d]));
                }
            }
            _ => {}
        }
        self.decode_varint_slow()
    }

    #[inline(never)]
    fn decode_varint_slow(&mut self) -> Result<u32, DecodeError> {
        let start = self.pos;
        let prefix = self.peek().ok_or_else(|| self.eof(start))?;
        let v = match prefix {
            0xcc => {
                self.pos += 1;
                return Ok(u32::from(self.read_array_from::<1>(start)?[0]));
            }
            0xcd => {
                self.pos += 1;
                return Ok(u32::from(u16::from_le_bytes(self.read_array_from(start)?)));
            }
            0xce => {
                self.pos += 1;
                return Ok(u32::from_le_bytes(self.read_array_from(start)?));
            }
            _ => self.decode_number()?,
        };
        if v >= 0.0 && v <= f64::from(u32::MAX) && v.fract() == 0.0 {
            Ok(v as u32)
        } else {
            Err(Self::error_at(start, DecodeErrorKind::InvalidIndex))
        }
    }

    /// Reads a string header and returns the length it announces, checked
    /// against the remaining bytes.
    #[inline]
    fn decode_str_len(&mut self) -> Result<usize, DecodeError> {
        let start = self.pos;
        let header = self.read_u8()?;
        let len = match header {
            0xa0..=0xbf => usize::from(header & 0x1f),
            0xd9 => usize::from(self.read_array_from::<1>(start)?[0]),
            0xda => usize::from(u16::from_le_bytes(self.read_array_from(start)?)),
            0xdb => u32::from_le_bytes(self.read_array_from(start)?) as usize,
            _ => {
                return Err(Self::error_at(
                    start,
                    DecodeErrorKind::InvalidStringHeader(header),
                ))
            }
        };
        if len > self.remaining() {
            return Err(self.eof(start));
        }
        Ok(len)
    }

    /// Checks a string (§2.3) and moves past it; returns the offset and
    /// length of its bytes. Cheaper than [`decode_str`](Self::decode_str)
    /// for ASCII strings.
    ///
    /// # Errors
    ///
    /// As [`decode_str`](Self::decode_str).
    #[inline(always)]
    pub(crate) fn skip_str(&mut self) -> Result<(usize, usize), DecodeError> {
        // Fast path: a short ASCII string.
        let start = self.pos;
        if let Some(&header) = self.buf.get(start) {
            if header & 0xe0 == 0xa0 {
                let (at, len) = (start + 1, usize::from(header & 0x1f));
                if let Some(bytes) = self.buf.get(at..at + len) {
                    if bytes.iter().fold(0, |acc, &b| acc | b) < 0x80 {
                        self.pos = at + len;
                        return Ok((at, len));
                    }
                }
            }
        }
        self.skip_str_slow()
    }

    #[inline(never)]
    fn skip_str_slow(&mut self) -> Result<(usize, usize), DecodeError> {
        let start = self.pos;
        let len = self.decode_str_len()?;
        let at = self.pos;
        let bytes = &self.buf[at..at + len];
        if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
            self.pos += len;
            Ok((at, len))
        } else {
            Err(Self::error_at(start, DecodeErrorKind::InvalidUtf8))
        }
    }

    /// Reads a string (§2.3), borrowing its bytes from the input.
    ///
    /// # Errors
    ///
    /// End of input (a length longer than the remaining bytes),
    /// [`DecodeErrorKind::InvalidStringHeader`], or
    /// [`DecodeErrorKind::InvalidUtf8`].
    #[inline]
    pub fn decode_str(&mut self) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let len = self.decode_str_len()?;
        let bytes = &self.buf[self.pos..self.pos + len];
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                self.pos += len;
                Ok(s)
            }
            Err(_) => Err(Self::error_at(start, DecodeErrorKind::InvalidUtf8)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::encode::{encode_number, encode_str, encode_varint};

    fn number(bytes: &[u8]) -> Result<f64, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = r.decode_number()?;
        assert!(r.is_empty(), "trailing bytes for {bytes:02x?}");
        Ok(v)
    }

    #[test]
    fn every_number_form() {
        assert_eq!(number(&[0x00]).unwrap(), 0.0);
        assert_eq!(number(&[0x7f]).unwrap(), 127.0);
        assert_eq!(number(&[0xe0]).unwrap(), -32.0);
        assert_eq!(number(&[0xff]).unwrap(), -1.0);
        assert_eq!(number(&[0xcc, 0x80]).unwrap(), 128.0);
        assert_eq!(number(&[0xcd, 0x00, 0x01]).unwrap(), 256.0);
        assert_eq!(number(&[0xce, 0x00, 0x00, 0x01, 0x00]).unwrap(), 65536.0);
        assert_eq!(
            number(&[0xcf, 0, 0, 0, 0, 1, 0, 0, 0]).unwrap(),
            4294967296.0
        );
        assert_eq!(number(&[0xd0, 0xdf]).unwrap(), -33.0);
        assert_eq!(number(&[0xd1, 0x7f, 0xff]).unwrap(), -129.0);
        assert_eq!(number(&[0xd2, 0xff, 0x7f, 0xff, 0xff]).unwrap(), -32769.0);
        assert_eq!(
            number(&[0xd3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).unwrap(),
            -4294967296.0
        );
        assert_eq!(number(&[0xca, 0, 0, 0, 0x3f]).unwrap(), 0.5);
        assert_eq!(
            number(&[0xca, 0xcd, 0xcc, 0x8c, 0x3f]).unwrap(),
            1.100000023841858
        );
        assert_eq!(
            number(&[0xcb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, 0x43]).unwrap(),
            9007199254740991.0
        );
    }

    #[test]
    fn bad_numbers() {
        for prefix in [0xc0u8, 0xc1, 0xc9, 0xd4, 0xdf, 0x80, 0xbf] {
            let err = number(&[prefix, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
            assert_eq!(err.kind(), DecodeErrorKind::InvalidNumber(prefix));
            assert_eq!(err.offset(), 0);
        }
        for bytes in [&[0xcdu8, 0x01][..], &[0xcb, 0, 0, 0], &[0xd3], &[]] {
            let err = number(bytes).unwrap_err();
            assert_eq!(err.kind(), DecodeErrorKind::UnexpectedEof, "{bytes:02x?}");
            assert_eq!(err.offset(), 0);
        }
    }

    #[test]
    fn number_round_trips_the_encoder() {
        for v in [
            0.0,
            1.0,
            -1.0,
            31.0,
            -32.0,
            -33.0,
            127.0,
            128.0,
            255.0,
            256.0,
            65535.0,
            65536.0,
            2147483647.0,
            -2147483648.0,
            2147483648.0,
            -2147483649.0,
            0.5,
            1e40,
            -1e-300,
        ] {
            let mut out = Vec::new();
            encode_number(&mut out, v);
            let got = number(&out).unwrap();
            // The encoder is lossy for non-integers (float32 when within 1e-4).
            assert!((got - v).abs() <= 1e-4 * v.abs().max(1.0), "{v} -> {got}");
        }
    }

    #[test]
    fn varints() {
        for v in [0u32, 1, 127, 128, 255, 256, 65535, 65536, u32::MAX] {
            let mut out = Vec::new();
            encode_varint(&mut out, v);
            let mut r = Reader::new(&out);
            assert_eq!(r.decode_varint().unwrap(), v);
            assert!(r.is_empty());
        }
        // Other number forms are accepted when they hold a valid index.
        assert_eq!(Reader::new(&[0xd0, 0x05]).decode_varint().unwrap(), 5);
        assert_eq!(
            Reader::new(&[0xca, 0, 0, 0x80, 0x3f])
                .decode_varint()
                .unwrap(),
            1
        );
        assert_eq!(
            Reader::new(&[0xcf, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])
                .decode_varint()
                .unwrap(),
            u32::MAX
        );
        for bytes in [
            &[0xff][..],
            &[0xca, 0, 0, 0, 0x3f],
            &[0xcf, 0, 0, 0, 0, 1, 0, 0, 0],
            &[0xcb, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f],
        ] {
            let err = Reader::new(bytes).decode_varint().unwrap_err();
            assert_eq!(err.kind(), DecodeErrorKind::InvalidIndex, "{bytes:02x?}");
        }
        assert_eq!(
            Reader::new(&[0xce, 1, 2])
                .decode_varint()
                .unwrap_err()
                .kind(),
            DecodeErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn strings() {
        for s in [
            "",
            "hello",
            "😀👍🏽",
            &"x".repeat(32),
            &"y".repeat(300),
            &"z".repeat(65536),
        ] {
            let mut out = Vec::new();
            encode_str(&mut out, s);
            out.push(0x42);
            let mut r = Reader::new(&out);
            assert_eq!(r.decode_str().unwrap(), s);
            assert_eq!(r.read_u8().unwrap(), 0x42);
        }
        // Length longer than the input: an error at the header, before any
        // allocation.
        let err = Reader::new(&[0x00, 0xdb, 0xff, 0xff, 0xff, 0xff, b'a'])
            .decode_str()
            .unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::InvalidStringHeader(0x00));
        let mut r = Reader::new(&[0x01, 0xdb, 0xff, 0xff, 0xff, 0xff, b'a']);
        r.read_u8().unwrap();
        let err = r.decode_str().unwrap_err();
        assert_eq!(
            (err.kind(), err.offset()),
            (DecodeErrorKind::UnexpectedEof, 1)
        );
        let err = Reader::new(&[0xa2, 0xc3, 0x28]).decode_str().unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::InvalidUtf8);
        let err = Reader::new(&[0x85]).decode_str().unwrap_err();
        assert_eq!(err.kind(), DecodeErrorKind::InvalidStringHeader(0x85));
    }

    #[test]
    fn fixed_width() {
        let mut r = Reader::new(&[0x80, 0xf0, 0xff, 0xe0, 0xff, 0xff, 0xff, 0x01, 0x00, 0x02]);
        assert_eq!(r.decode_i8().unwrap(), -128);
        assert_eq!(r.decode_i16().unwrap(), -16);
        assert_eq!(r.decode_i32().unwrap(), -32);
        assert!(r.decode_bool().unwrap());
        assert!(!r.decode_bool().unwrap());
        assert_eq!(
            r.decode_bool().unwrap_err().kind(),
            DecodeErrorKind::InvalidBoolean(2)
        );
        assert_eq!(r.decode_u64().unwrap_err().offset(), 10);
    }

    #[test]
    fn error_is_small() {
        assert!(std::mem::size_of::<DecodeError>() <= 32);
    }
}
