//! Quantized floats (`t.quantized` of `@colyseus/schema` 5.x): a bounded
//! float sent as an unsigned 8-, 16- or 32-bit integer.
//!
//! Both peers hold the same value: the setter snaps the float to the
//! nearest step (what the client will decode), so the server's state is the
//! clients' state. The arithmetic is the reference's, in `f64`, with its
//! explicit half-up rounding, so the steps are bit-for-bit the reference's:
//!
//! * clamped (default): `[min, max]` inclusive, out-of-range values clamp;
//!   `2^bits − 1` intervals, or `2^bits − 2` when `min == -max` so that
//!   zero is a step;
//! * wrapping: a cyclic `[min, max)` (an angle), reduced modulo the range
//!   first, `2^bits` steps.
//!
//! In a derived struct: `#[schema(quantized(min = 0.0, max = 6.2832, bits = 16, wrap))]`
//! on an `f32` or `f64` field (`bits` defaults to 16, `wrap` to clamping).
//!
//! ```
//! use roomcast_schema::quantize::Quantize;
//!
//! let throttle = Quantize::new(0.0, 1.0, 8, false).unwrap();
//! assert_eq!(throttle.quantize(0.5), 128);
//! assert_eq!(throttle.snap(0.5), 128.0 / 255.0);
//! ```

use std::hash::{Hash, Hasher};

use crate::types::Primitive;
use crate::wire;

/// How a quantized field maps floats to integers (a QuantizedDescriptor of
/// the reference's Reflection).
#[derive(Debug, Clone, Copy)]
pub struct Quantize {
    min: f64,
    max: f64,
    bits: u8,
    wrap: bool,
}

/// Why a quantization cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantizeError {
    /// `min` and `max` must be finite with `min < max`.
    #[error("quantized: min and max must be finite with min < max")]
    Range,
    /// Only 8, 16 and 32 bits exist on the wire.
    #[error("quantized: bits must be 8, 16 or 32")]
    Bits,
}

impl Quantize {
    /// `bits` of 8, 16 or 32 over `[min, max]` (clamped) or the cycle
    /// `[min, max)` (`wrap`).
    ///
    /// # Errors
    ///
    /// [`QuantizeError`] for a range that is not finite and increasing, or
    /// another width.
    pub fn new(min: f64, max: f64, bits: u8, wrap: bool) -> Result<Self, QuantizeError> {
        if !(min.is_finite() && max.is_finite() && min < max) {
            return Err(QuantizeError::Range);
        }
        if !matches!(bits, 8 | 16 | 32) {
            return Err(QuantizeError::Bits);
        }
        Ok(Self {
            min,
            max,
            bits,
            wrap,
        })
    }

    /// For `#[derive(Schema)]`, which checks the arguments at compile time.
    #[doc(hidden)]
    #[must_use]
    pub const fn __checked(min: f64, max: f64, bits: u8, wrap: bool) -> Self {
        Self {
            min,
            max,
            bits,
            wrap,
        }
    }

    /// Lower bound.
    #[must_use]
    pub fn min(&self) -> f64 {
        self.min
    }

    /// Upper bound (exclusive when wrapping).
    #[must_use]
    pub fn max(&self) -> f64 {
        self.max
    }

    /// Wire width: 8, 16 or 32.
    #[must_use]
    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// Whether the range is cyclic.
    #[must_use]
    pub fn wraps(&self) -> bool {
        self.wrap
    }

    /// The unsigned integer type on the wire.
    #[must_use]
    pub fn wire(&self) -> Primitive {
        match self.bits {
            8 => Primitive::Uint8,
            16 => Primitive::Uint16,
            _ => Primitive::Uint32,
        }
    }

    fn range(&self) -> f64 {
        self.max - self.min
    }

    /// The integer span of the scale (the reference's rule, see the module).
    fn span(&self) -> f64 {
        let steps = 2f64.powi(i32::from(self.bits));
        if self.wrap {
            steps
        } else if self.min == -self.max {
            steps - 2.0
        } else {
            steps - 1.0
        }
    }

    /// The integer sent for `value`. NaN (and, when wrapping, ±Infinity)
    /// gives 0, i.e. `min`.
    #[must_use]
    pub fn quantize(&self, value: f64) -> u32 {
        let span = self.span();
        let q = if self.wrap {
            if !value.is_finite() {
                return 0;
            }
            let range = self.range();
            let mut a = (value - self.min) % range;
            if a < 0.0 {
                a += range;
            }
            ((a / range) * span + 0.5).floor() % span
        } else {
            if value.is_nan() {
                return 0;
            }
            let v = value.clamp(self.min, self.max);
            (((v - self.min) / self.range()) * span + 0.5).floor()
        };
        // In range by construction: 0 ≤ q ≤ span ≤ 2^bits.
        q as u32
    }

    /// The float an integer stands for.
    #[must_use]
    pub fn dequantize(&self, q: u32) -> f64 {
        self.min + (f64::from(q) / self.span()) * self.range()
    }

    /// `value` as the clients will see it.
    #[must_use]
    pub fn snap(&self, value: f64) -> f64 {
        self.dequantize(self.quantize(value))
    }

    /// Writes the integer for `value`.
    #[doc(hidden)]
    pub fn encode(&self, value: f64, out: &mut Vec<u8>) {
        let q = self.quantize(value);
        match self.bits {
            8 => wire::encode_u8(out, q as u8),
            16 => wire::encode_u16(out, q as u16),
            _ => wire::encode_u32(out, q),
        }
    }
}

/// Equal when every parameter is, bit for bit.
impl PartialEq for Quantize {
    fn eq(&self, other: &Self) -> bool {
        self.min.to_bits() == other.min.to_bits()
            && self.max.to_bits() == other.max.to_bits()
            && self.bits == other.bits
            && self.wrap == other.wrap
    }
}

impl Eq for Quantize {}

impl Hash for Quantize {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.min.to_bits().hash(state);
        self.max.to_bits().hash(state);
        self.bits.hash(state);
        self.wrap.hash(state);
    }
}

/// The Rust types a quantized field can have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a quantized field",
    label = "not f32 or f64",
    note = "#[schema(quantized(..))] fields are f32 or f64"
)]
pub trait Quantizable: Copy {
    /// As `f64`.
    fn to_f64(self) -> f64;
    /// From `f64` (rounded to the type).
    fn from_f64(v: f64) -> Self;
}

impl Quantizable for f64 {
    fn to_f64(self) -> f64 {
        self
    }

    fn from_f64(v: f64) -> Self {
        v
    }
}

impl Quantizable for f32 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }

    fn from_f64(v: f64) -> Self {
        v as Self
    }
}

/// `value` snapped to a step of `q` (the setter of a quantized field).
#[doc(hidden)]
#[must_use]
pub fn snap<T: Quantizable>(value: T, q: &Quantize) -> T {
    T::from_f64(q.snap(value.to_f64()))
}

/// Writes `op` and the integer for `value` (a changed quantized field).
#[doc(hidden)]
pub fn encode_op<T: Quantizable>(value: T, q: &Quantize, op: u8, out: &mut Vec<u8>) {
    out.push(op);
    q.encode(value.to_f64(), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's bytes for the same values (@colyseus/schema 5.0.34:
    /// `yaw = 7.0`, `pitch = 0.3`, `throttle = 0.5` encode as
    /// `80 35 1d | 81 98 99 | 82 80`, and read back as these floats).
    #[test]
    fn steps_are_the_references() {
        let yaw = Quantize::new(0.0, std::f64::consts::PI * 2.0, 16, true).unwrap();
        let pitch = Quantize::new(-1.5, 1.5, 16, false).unwrap();
        let throttle = Quantize::new(0.0, 1.0, 8, false).unwrap();
        assert_eq!(yaw.quantize(7.0), 0x1d35);
        assert_eq!(pitch.quantize(0.3), 0x9998);
        assert_eq!(throttle.quantize(0.5), 0x80);
        assert_eq!(yaw.snap(7.0), 0.716_848_396_938_808_6);
        assert_eq!(pitch.snap(0.3), 0.299_981_688_894_314_54);
        assert_eq!(throttle.snap(0.5), 0.501_960_784_313_725_5);
    }

    #[test]
    fn edges() {
        let q = Quantize::new(0.0, 1.0, 8, false).unwrap();
        assert_eq!(q.quantize(-5.0), 0);
        assert_eq!(q.quantize(5.0), 255);
        assert_eq!(q.quantize(f64::NAN), 0);
        assert_eq!(q.quantize(f64::INFINITY), 255);
        // A symmetric range has an exact zero.
        let axis = Quantize::new(-1.0, 1.0, 8, false).unwrap();
        assert_eq!(axis.snap(0.0), 0.0);
        assert_eq!(axis.quantize(1.0), 254);
        // Wrapping folds the top onto the bottom.
        let angle = Quantize::new(0.0, 360.0, 8, true).unwrap();
        assert_eq!(angle.quantize(360.0), 0);
        assert_eq!(angle.quantize(-90.0), angle.quantize(270.0));
        assert_eq!(angle.quantize(f64::INFINITY), 0);
        let wide = Quantize::new(0.0, 1.0, 32, false).unwrap();
        assert_eq!(wide.quantize(1.0), u32::MAX);
        assert_eq!(Quantize::new(1.0, 1.0, 8, false), Err(QuantizeError::Range));
        assert_eq!(
            Quantize::new(0.0, f64::INFINITY, 8, false),
            Err(QuantizeError::Range)
        );
        assert_eq!(Quantize::new(0.0, 1.0, 12, false), Err(QuantizeError::Bits));
    }
}
