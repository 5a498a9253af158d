//! Values of the dynamic value tree, and their JSON form.
//!
//! The JSON follows the conventions of the test vectors (`shared/vectors`
//! README): numbers printed as JavaScript prints them, `NaN`, `±Infinity`
//! and `-0` as `{"$num": …}`, 64-bit bigints as `{"$bigint": "…"}`.

use std::fmt::{self, Write as _};

use crate::decoder::reference_tracker::RefId;

/// A field value or collection element of the dynamic value tree.
///
/// Integers are kept exact; their JSON form rounds `int64`/`uint64` beyond
/// 2^53 as a JavaScript client would.
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
    String(String),
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
        Value::String(ref s) => write_json_str(out, s),
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
    fn js_equality() {
        assert!(!Value::Number(f64::NAN).js_same(&Value::Number(f64::NAN)));
        assert!(Value::Number(0.0).js_same(&Value::Number(-0.0)));
        assert!(Value::String("a".into()).js_same(&Value::String("a".into())));
        assert!(!Value::Ref(RefId(1)).js_same(&Value::Ref(RefId(2))));
    }
}
