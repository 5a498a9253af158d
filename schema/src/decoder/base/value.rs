//! Values of the dynamic value tree, and their JSON form.
//!
//! The JSON follows the conventions of the test vectors (`shared/vectors`
//! README): numbers printed as JavaScript prints them, `NaN`, `±Infinity`
//! and `-0` as `{"$num": …}`, 64-bit bigints as `{"$bigint": "…"}`.

use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use crate::decoder::base::reference_tracker::RefId;

/// Bytes a [`Str`] holds without a heap allocation.
const INLINE: usize = 14;

/// A decoded string: up to 14 bytes inline (no heap allocation, and the
/// whole [`Value`] stays 16 bytes), longer ones on the heap.
///
/// Dereferences to `str`; compares and orders as its `str` (comparisons and
/// hashing read the bytes, without checking them again).
///
/// # Examples
///
/// ```
/// use roomcast_schema::decoder::Str;
/// let s = Str::from("e42");
/// assert_eq!(&*s, "e42");
/// assert_eq!(s, "e42");
/// assert_eq!(s.len(), 3);
/// ```
#[derive(Clone)]
pub struct Str(Repr);

#[derive(Clone)]
#[allow(
    clippy::box_collection,
    reason = "a thin pointer keeps Str (and Value) at 16 bytes"
)]
enum Repr {
    Inline {
        len: u8,
        buf: [u8; INLINE],
    },
    /// Boxed twice so that the `Str` stays 16 bytes; the `String` keeps its
    /// capacity when a new value is written over it.
    Heap(Box<String>),
}

/// `bytes` (at most [`INLINE`]) zero-padded to the inline buffer, read with
/// at most two overlapping word loads and combined in a register: a
/// `copy_from_slice` of a variable length is a `memcpy` call writing byte by
/// byte, and the 16-byte read of the `Value` that follows then waits for
/// those stores (a store-forwarding stall that was a tenth of a full-state
/// decode).
#[inline(always)]
fn inline_buf(bytes: &[u8]) -> [u8; INLINE] {
    let n = bytes.len();
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u128::from(u32::from_le_bytes(b)))
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u128::from(u64::from_le_bytes(b)))
    };
    // Two loads of a word, at 0 and at `n - word`: their overlap holds the
    // same bytes, so OR-ing them is exact.
    let v = match n {
        0 => 0,
        1..=3 => bytes
            .iter()
            .enumerate()
            .fold(0, |v, (i, &b)| v | (u128::from(b) << (8 * i))),
        4..=7 => u32_at(0) | (u32_at(n - 4) << (8 * (n - 4))),
        _ => u64_at(0) | (u64_at(n - 8) << (8 * (n - 8))),
    };
    let mut buf = [0; INLINE];
    buf.copy_from_slice(&v.to_le_bytes()[..INLINE]);
    buf
}

impl Str {
    /// Bytes held inline.
    pub(crate) const INLINE: usize = INLINE;

    /// The empty string.
    #[must_use]
    pub const fn new() -> Self {
        Self(Repr::Inline {
            len: 0,
            buf: [0; INLINE],
        })
    }

    /// The string.
    #[must_use]
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Always valid UTF-8 (written from a `str`, whole).
            Repr::Inline { len, buf } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Heap(s) => s,
        }
    }

    /// The bytes of the string.
    #[must_use]
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..usize::from(*len)],
            Repr::Heap(s) => s.as_bytes(),
        }
    }

    /// A string of `bytes`, which the caller has checked to be UTF-8 (no
    /// second check for a short string; were they not, the string would
    /// read as empty).
    #[inline]
    pub(crate) fn from_checked(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE {
            Self(Repr::Inline {
                len: bytes.len() as u8,
                buf: inline_buf(bytes),
            })
        } else {
            Self::from(std::str::from_utf8(bytes).unwrap_or_default())
        }
    }

    /// Replaces the content by `s`, reusing the heap buffer if there is
    /// one (no allocation when it is large enough, or when `s` fits
    /// inline).
    #[inline]
    pub fn set(&mut self, s: &str) {
        match &mut self.0 {
            Repr::Heap(b) => {
                b.clear();
                b.push_str(s);
            }
            Repr::Inline { .. } => *self = Self::from(s),
        }
    }
}

impl Str {
    /// `s`, inline when it fits, else in `buffer` (taken from a pool: no
    /// allocation when its capacity suffices).
    #[inline]
    #[allow(clippy::box_collection, reason = "the buffer of Repr::Heap")]
    pub(crate) fn with_buffer(s: &str, buffer: impl FnOnce() -> Box<String>) -> Self {
        if s.len() <= INLINE {
            Self::from(s)
        } else {
            let mut b = buffer();
            b.clear();
            b.push_str(s);
            Self(Repr::Heap(b))
        }
    }

    /// The heap buffer, if the string has one (for reuse).
    #[inline]
    #[allow(clippy::box_collection, reason = "the buffer of Repr::Heap")]
    pub(crate) fn into_buffer(self) -> Option<Box<String>> {
        match self.0 {
            Repr::Heap(b) => Some(b),
            Repr::Inline { .. } => None,
        }
    }
}

impl Default for Str {
    fn default() -> Self {
        Self::new()
    }
}

impl From<&str> for Str {
    #[inline]
    fn from(s: &str) -> Self {
        if s.len() <= INLINE {
            Self(Repr::Inline {
                len: s.len() as u8,
                buf: inline_buf(s.as_bytes()),
            })
        } else {
            Self(Repr::Heap(Box::new(s.to_owned())))
        }
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        if s.len() <= INLINE {
            Self::from(s.as_str())
        } else {
            Self(Repr::Heap(Box::new(s)))
        }
    }
}

impl From<&Str> for std::sync::Arc<str> {
    fn from(s: &Str) -> Self {
        Self::from(s.as_str())
    }
}

impl Deref for Str {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Str {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Str {}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialOrd for Str {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // UTF-8 bytes order as their code points.
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for Str {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.as_bytes());
        state.write_u8(0xff);
    }
}

/// The bytes of a string, hashing like the [`Str`] holding them: probes a
/// table keyed by `Str` without building one.
pub(crate) struct KeyBytes<'a>(pub(crate) &'a [u8]);

impl Hash for KeyBytes<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0);
        state.write_u8(0xff);
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field value or collection element of the dynamic value tree.
///
/// Integers are kept exact; their JSON form rounds `int64`/`uint64` beyond
/// 2^53 as a JavaScript client would. A `Value` is 16 bytes: strings up to
/// 14 bytes are held inline ([`Str`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `boolean`.
    Bool(bool),
    /// `int8`, `uint8`, `int16`, `uint16`, `int32`, `uint32`, `int64`.
    Int(i64),
    /// `uint64`.
    Uint(u64),
    /// `number`, `float32` (widened exactly), `float64`.
    Number(f64),
    /// `bigint64`.
    BigInt(i64),
    /// `biguint64`.
    BigUint(u64),
    /// `string`.
    String(Str),
    /// A child struct instance or collection, by refId.
    Ref(RefId),
}

impl Value {
    /// The refId of a child reference.
    #[must_use]
    pub fn as_ref_id(&self) -> Option<RefId> {
        match *self {
            Self::Ref(id) => Some(id),
            _ => None,
        }
    }

    /// The value as an `f64`, for any numeric kind (64-bit integers are
    /// rounded).
    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::Int(v) | Self::BigInt(v) => Some(v as f64),
            Self::Uint(v) | Self::BigUint(v) => Some(v as f64),
            Self::Number(v) => Some(v),
            _ => None,
        }
    }

    /// The string of a `string` value.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean of a `boolean` value.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// JavaScript `===` between two decoded values (`NaN !== NaN`,
    /// `0 === -0`); refs compare by identity.
    pub(crate) fn js_same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Bool(a), Self::Bool(b)) => a == b,
            (Self::Int(a), Self::Int(b)) | (Self::BigInt(a), Self::BigInt(b)) => a == b,
            (Self::Uint(a), Self::Uint(b)) | (Self::BigUint(a), Self::BigUint(b)) => a == b,
            (Self::Number(a), Self::Number(b)) => a == b,
            (Self::String(a), Self::String(b)) => a == b,
            (Self::Ref(a), Self::Ref(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Value {
    /// The JSON form of a primitive; a ref prints as `#refId`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        match self {
            Self::Ref(id) => return write!(f, "{id}"),
            v => write_primitive_json(&mut s, v),
        }
        f.write_str(&s)
    }
}

/// Largest integer a JavaScript number holds exactly.
const MAX_SAFE: u64 = (1 << 53) - 1;

/// Appends the JSON of a primitive value (refs are the caller's business).
pub(crate) fn write_primitive_json(out: &mut String, v: &Value) {
    match *v {
        Value::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Value::Int(i) => {
            if i.unsigned_abs() <= MAX_SAFE {
                let _ = write!(out, "{i}");
            } else {
                write_js_number(out, i as f64);
            }
        }
        Value::Uint(u) => {
            if u <= MAX_SAFE {
                let _ = write!(out, "{u}");
            } else {
                write_js_number(out, u as f64);
            }
        }
        Value::Number(n) => write_js_number(out, n),
        Value::BigInt(i) => {
            let _ = write!(out, "{{\"$bigint\":\"{i}\"}}");
        }
        Value::BigUint(u) => {
            let _ = write!(out, "{{\"$bigint\":\"{u}\"}}");
        }
        Value::String(ref s) => write_json_str(out, s.as_str()),
        Value::Ref(id) => {
            let _ = write!(out, "{{\"$ref\":{}}}", id.0);
        }
    }
}

/// Appends a number the way `JSON.stringify` does, with the vectors' `$num`
/// escape for `NaN`, `±Infinity` and `-0`.
pub(crate) fn write_js_number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str(r#"{"$num":"NaN"}"#);
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            r#"{"$num":"Infinity"}"#
        } else {
            r#"{"$num":"-Infinity"}"#
        });
    } else if v == 0.0 {
        out.push_str(if v.is_sign_negative() {
            r#"{"$num":"-0"}"#
        } else {
            "0"
        });
    } else {
        format_js_number(out, v);
    }
}

/// `Number.prototype.toString()` for a finite, non-zero number: the
/// shortest round-tripping digits, in plain or exponential notation by
/// JavaScript's rules (ECMA-262 `Number::toString`).
fn format_js_number(out: &mut String, v: f64) {
    // Rust's `{:e}` prints the shortest round-tripping digits too.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i32;
    let n = exp + 1;
    if v < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = n - 1;
        let _ = write!(
            out,
            "e{}{}",
            if e < 0 { '-' } else { '+' },
            e.unsigned_abs()
        );
    }
}

/// Appends a JSON string literal, escaped like `JSON.stringify`.
pub(crate) fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Orders object keys like the vectors' generator (JavaScript string
/// comparison: UTF-16 code units).
pub(crate) fn js_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_forms_hold_every_length() {
        let text = "aé€😀bcdefghijk";
        for end in 0..=text.len() {
            let Some(sub) = text.get(..end) else { continue };
            if sub.len() > INLINE {
                break;
            }
            let a = Str::from(sub);
            let b = Str::from_checked(sub.as_bytes());
            assert_eq!(a.as_str(), sub);
            assert_eq!(b.as_str(), sub);
            assert_eq!(a, b);
        }
    }

    fn js(v: f64) -> String {
        let mut s = String::new();
        write_js_number(&mut s, v);
        s
    }

    #[test]
    fn javascript_number_formatting() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (0.10000000149011612, "0.10000000149011612"),
            (1.100000023841858, "1.100000023841858"),
            (123456789.0, "123456789"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (1.401298464324817e-45, "1.401298464324817e-45"),
            (3.4028234663852886e38, "3.4028234663852886e+38"),
            (9007199254740991.0, "9007199254740991"),
            (-2147483649.0, "-2147483649"),
            (0.0, "0"),
            (-0.0, r#"{"$num":"-0"}"#),
            (f64::NAN, r#"{"$num":"NaN"}"#),
            (f64::NEG_INFINITY, r#"{"$num":"-Infinity"}"#),
        ];
        for &(v, want) in cases {
            assert_eq!(js(v), want, "{v:e}");
        }
    }

    #[test]
    fn primitives() {
        let mut s = String::new();
        for v in [
            Value::Int(-5),
            Value::Int(i64::MAX),
            Value::Uint(u64::MAX),
            Value::BigInt(i64::MIN),
            Value::BigUint(u64::MAX),
            Value::Bool(true),
            Value::String("a\"\\\n\u{1}é".into()),
        ] {
            write_primitive_json(&mut s, &v);
            s.push(' ');
        }
        assert_eq!(
            s,
            r#"-5 9223372036854776000 18446744073709552000 {"$bigint":"-9223372036854775808"} {"$bigint":"18446744073709551615"} true "a\"\\\n\u0001é" "#
        );
    }

    #[test]
    fn key_bytes_hash_like_their_str() {
        use std::hash::BuildHasher;
        let h = foldhash::fast::FixedState::with_seed(7);
        for s in ["", "e1", "a key longer than the inline buffer"] {
            assert_eq!(h.hash_one(KeyBytes(s.as_bytes())), h.hash_one(Str::from(s)));
        }
    }

    #[test]
    fn values_stay_small() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
        assert_eq!(std::mem::size_of::<Option<Value>>(), 16);
        assert_eq!(std::mem::size_of::<Str>(), 16);
    }

    #[test]
    fn strings_inline_and_on_the_heap() {
        for s in [
            "",
            "e1",
            "fourteen bytes",
            "fifteen bytes!!",
            "é".repeat(20).as_str(),
        ] {
            let v = Str::from(s);
            assert_eq!(v.as_str(), s);
            assert_eq!(Str::from(s.to_owned()), v);
        }
        let mut v = Str::from("a long string on the heap");
        v.set("short");
        assert_eq!(v, "short");
        v.set("another long string, same buffer");
        assert_eq!(v, "another long string, same buffer");
        let mut w = Str::new();
        w.set("now this one is long");
        assert_eq!(w, "now this one is long");
    }

    #[test]
    fn js_equality() {
        assert!(!Value::Number(f64::NAN).js_same(&Value::Number(f64::NAN)));
        assert!(Value::Number(0.0).js_same(&Value::Number(-0.0)));
        assert!(Value::String("a".into()).js_same(&Value::String("a".into())));
        assert!(!Value::Ref(RefId(1)).js_same(&Value::Ref(RefId(2))));
    }
}
