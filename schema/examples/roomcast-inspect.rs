//! `roomcast-inspect`: prints Colyseus state messages as readable operations
//! and the resulting state, given the Reflection bytes of the room.
//!
//! ```text
//! cargo run -p roomcast-schema --example roomcast-inspect -- [OPTIONS] REFLECTION [MESSAGE...]
//!
//!   REFLECTION, MESSAGE   hex digits (spaces allowed), @FILE (raw bytes, or hex
//!                         text), or - : read messages from stdin, one hex per line
//!   --legacy              Reflection in the 3.x/4.x form (default: either form)
//!   --types               also list the decoded types
//!   --protocol            messages start with the room-protocol byte (14 ROOM_STATE,
//!                         15 ROOM_STATE_PATCH): skip it
//! ```
//!
//! Messages are applied in order (the first is usually a full state); after
//! each one the JSON state is printed. A malformed message prints its
//! operations up to the problem, the error with its byte offset, and leaves
//! the state as it was.

use std::io::{self, BufRead, Read};
use std::process::ExitCode;

use roomcast_schema::decoder::{DynamicDecoder, ReflectionDialect};
use roomcast_schema::types::{ElementType, FieldType, TypeId};

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':' && *c != ',')
        .collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|e| format!("bad hex: {e}")))
        .collect()
}

/// A hex argument, or `@file` (hex text or raw bytes).
fn load(arg: &str) -> Result<Vec<u8>, String> {
    match arg.strip_prefix('@') {
        Some(path) => {
            let mut bytes = Vec::new();
            std::fs::File::open(path)
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(|e| format!("{path}: {e}"))?;
            match std::str::from_utf8(&bytes).ok().map(parse_hex) {
                Some(Ok(decoded)) => Ok(decoded),
                _ => Ok(bytes),
            }
        }
        None => parse_hex(arg),
    }
}

fn print_types(decoder: &DynamicDecoder) {
    let types = decoder.types();
    let name = |t: TypeId| format!("type{}", t.0);
    for (i, def) in types.types().iter().enumerate() {
        let id = TypeId(i as u32);
        let root = if types.root() == id { " (root)" } else { "" };
        let parent = def
            .extends
            .map(|p| format!(" extends {}", name(p)))
            .unwrap_or_default();
        println!("{}{parent}{root}", name(id));
        for (index, f) in types.fields(id).iter().enumerate() {
            let ty = match f.ty {
                FieldType::Primitive(p) => p.name().to_owned(),
                FieldType::Quantized(q) => format!(
                    "quantized({}..{}, {} bits{})",
                    q.min(),
                    q.max(),
                    q.bits(),
                    if q.wraps() { ", wrapping" } else { "" }
                ),
                FieldType::Schema(t) => name(t),
                FieldType::Collection(kind, ElementType::Primitive(p)) => {
                    format!("{}<{p}>", kind.name())
                }
                FieldType::Collection(kind, ElementType::Schema(t)) => {
                    format!("{}<{}>", kind.name(), name(t))
                }
            };
            println!("  {index:2} {}: {ty}", f.name);
        }
    }
}

fn run() -> Result<bool, String> {
    let mut dialect = ReflectionDialect::Auto;
    let mut show_types = false;
    let mut protocol = false;
    let mut positional = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--legacy" => dialect = ReflectionDialect::Legacy,
            "--types" => show_types = true,
            "--protocol" => protocol = true,
            "-h" | "--help" => {
                println!("usage: roomcast-inspect [--legacy] [--types] [--protocol] REFLECTION [MESSAGE...|-]");
                return Ok(true);
            }
            _ => positional.push(arg),
        }
    }
    let Some((reflection, messages)) = positional.split_first() else {
        return Err("missing REFLECTION (try --help)".into());
    };
    let reflection = load(reflection)?;
    let mut decoder = DynamicDecoder::from_reflection(&reflection, dialect)
        .map_err(|e| format!("Reflection: {e}"))?;
    if show_types {
        print_types(&decoder);
    }
    let mut inputs = Vec::new();
    for m in messages {
        if m == "-" {
            for line in io::stdin().lock().lines() {
                let line = line.map_err(|e| e.to_string())?;
                if !line.trim().is_empty() {
                    inputs.push(parse_hex(&line)?);
                }
            }
        } else {
            inputs.push(load(m)?);
        }
    }
    let mut all_ok = true;
    for (n, mut bytes) in inputs.into_iter().enumerate() {
        if protocol && !bytes.is_empty() {
            let code = bytes.remove(0);
            println!(
                "== message {} ({} bytes, protocol code {code})",
                n + 1,
                bytes.len()
            );
        } else {
            println!("== message {} ({} bytes)", n + 1, bytes.len());
        }
        let mut listing = String::new();
        let checked = decoder.explain(&bytes, &mut listing);
        print!("{listing}");
        match checked.and_then(|()| decoder.decode(&bytes)) {
            Ok(()) => println!("state: {}", decoder.to_json()),
            Err(e) => {
                all_ok = false;
                println!("rejected ({e}); state unchanged: {}", decoder.to_json());
            }
        }
    }
    Ok(all_ok)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("roomcast-inspect: {e}");
            ExitCode::from(2)
        }
    }
}
