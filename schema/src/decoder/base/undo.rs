//! The undo log of the primitive field writes made while parsing.
//!
//! The parse pass writes primitive fields of structures the decoder already
//! holds as it reads them (one pass over the message and over each
//! struct's node instead of two), and logs the value each write replaced.
//! When the message turns out to be invalid, the log is replayed in
//! reverse, so the state is exactly what it was (`decoder` docs: a message
//! is applied entirely or not at all). Old strings are moved into the log
//! and their buffers reused for later writes: no allocation in steady
//! state.

use crate::decoder::base::parse::{FieldWrite, ShapeSource, TypedFields};
use crate::decoder::base::reference_tracker::RefId;
use crate::decoder::base::value::{Str, Value};

/// One replaced value: the slot, and the old value packed in 16 bytes
/// (strings are kept aside in [`UndoLog::strings`]).
#[derive(Debug, Clone, Copy)]
struct Entry {
    id: RefId,
    index: u8,
    tag: u8,
    bits: u64,
}

const NONE: u8 = 0;
const BOOL: u8 = 1;
const INT: u8 = 2;
const UINT: u8 = 3;
const NUMBER: u8 = 4;
const BIG_INT: u8 = 5;
const BIG_UINT: u8 = 6;
const STRING: u8 = 7;
const REF: u8 = 8;

/// Most string buffers kept for reuse between messages.
const POOL_MAX: usize = 1 << 16;

#[derive(Debug, Default)]
pub(crate) struct UndoLog {
    entries: Vec<Entry>,
    /// The old strings of the `STRING` entries, in the same order.
    strings: Vec<Str>,
    /// Heap buffers for the next writes of strings too long to be inline.
    #[allow(clippy::vec_box, reason = "the buffers of Str's heap form")]
    pool: Vec<Box<String>>,
}

impl UndoLog {
    /// Records that field `index` of struct `id` held `old`.
    #[inline]
    pub(crate) fn push(&mut self, id: RefId, index: u8, old: Option<Value>) {
        let (tag, bits) = match old {
            None => (NONE, 0),
            Some(Value::Bool(b)) => (BOOL, u64::from(b)),
            Some(Value::Int(v)) => (INT, v as u64),
            Some(Value::Uint(v)) => (UINT, v),
            Some(Value::Number(v)) => (NUMBER, v.to_bits()),
            Some(Value::BigInt(v)) => (BIG_INT, v as u64),
            Some(Value::BigUint(v)) => (BIG_UINT, v),
            Some(Value::String(s)) => {
                self.strings.push(s);
                (STRING, 0)
            }
            Some(Value::Ref(r)) => (REF, u64::from(r.0)),
        };
        self.entries.push(Entry {
            id,
            index,
            tag,
            bits,
        });
    }

    /// Records that field `index` of struct `id` held the number `old`.
    #[inline(always)]
    pub(crate) fn push_number(&mut self, id: RefId, index: u8, old: f64) {
        self.entries.push(Entry {
            id,
            index,
            tag: NUMBER,
            bits: old.to_bits(),
        });
    }

    /// A string value of `s` (inline, or in a reused heap buffer when one
    /// is available).
    #[inline]
    pub(crate) fn string(&mut self, s: &str) -> Str {
        Str::with_buffer(s, || self.pool.pop().unwrap_or_default())
    }

    /// [`string`](Self::string) of bytes checked to be UTF-8 (not checked
    /// again when they fit inline).
    #[inline]
    pub(crate) fn string_checked(&mut self, bytes: &[u8]) -> Str {
        if bytes.len() <= Str::INLINE {
            Str::from_checked(bytes)
        } else {
            self.string(std::str::from_utf8(bytes).unwrap_or_default())
        }
    }

    fn recycle(&mut self, s: Str) {
        if let Some(b) = s.into_buffer() {
            if self.pool.len() < POOL_MAX {
                self.pool.push(b);
            }
        }
    }

    /// The message was applied: forgets the log, keeping the old strings'
    /// buffers for reuse. They are popped in the order they were logged,
    /// so that a patch writing the same fields as the previous one gets
    /// back, for each write, the buffer that field held before (its
    /// capacity already fits).
    pub(crate) fn commit(&mut self) {
        self.entries.clear();
        let mut strings = std::mem::take(&mut self.strings);
        for s in strings.drain(..).rev() {
            self.recycle(s);
        }
        self.strings = strings;
    }

    /// The message was rejected: puts every logged value back, last write
    /// first.
    pub(crate) fn rollback<S: ShapeSource + ?Sized>(&mut self, state: &mut S) {
        while let Some(e) = self.entries.pop() {
            let old = match e.tag {
                BOOL => Some(Value::Bool(e.bits != 0)),
                INT => Some(Value::Int(e.bits as i64)),
                UINT => Some(Value::Uint(e.bits)),
                NUMBER => Some(Value::Number(f64::from_bits(e.bits))),
                BIG_INT => Some(Value::BigInt(e.bits as i64)),
                BIG_UINT => Some(Value::BigUint(e.bits)),
                STRING => self.strings.pop().map(Value::String),
                REF => Some(Value::Ref(RefId(e.bits as u32))),
                _ => None,
            };
            let Some(slot) = state
                .struct_slots(e.id)
                .and_then(|slots| slots.get_mut(usize::from(e.index)))
            else {
                // A field of a typed value, written in place.
                if let Some(n) = state.typed_node(e.id) {
                    let input = old
                        .as_ref()
                        .map_or(FieldWrite::Delete, FieldWrite::Primitive);
                    n.write_field(e.index, input);
                }
                continue;
            };
            if let Some(Value::String(s)) = std::mem::replace(slot, old) {
                self.recycle(s);
            }
        }
        self.strings.clear();
    }
}
