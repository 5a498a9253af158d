//! `roomcast-codegen`: client classes from Reflection bytes (the JOIN_ROOM
//! handshake of a Roomcast or Colyseus server), as `schema-codegen` writes
//! them.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use roomcast_codegen::{generate_from_reflection, Language, Options};
use roomcast_schema::types::TypeId;

const USAGE: &str = "\
usage: roomcast-codegen <reflection-file> --lang ts|cs|hx|lua --output <dir>
                        [--namespace <name>] [--bundle] [--type-name <id>=<Name>]...

  <reflection-file>        the Reflection bytes a server sends in JOIN_ROOM
                           (`-`: standard input); the demo writes its own with
                           `cargo run -p roomcast --bin roomcast-demo -- --reflection-out <file>`
  --lang                   ts (TypeScript), cs (C#), hx (Haxe) or lua
  --output                 the directory to write one file per type into
                           (created if missing)
  --namespace              the C# namespace, Haxe package or Lua module prefix
  --bundle                 one file with every class (named after the
                           namespace, else schema.ts, Schema.cs, Schema.hx,
                           schema.lua)
  --type-name <id>=<Name>  the class name of type <id> (Reflection carries no
                           names: the root type is `State`, the others
                           `Type<id>` by default)";

struct Args {
    input: String,
    language: Language,
    output: PathBuf,
    options: Options,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut input, mut language, mut output) = (None, None, None);
    let mut options = Options::new();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "--lang" => language = Some(value("--lang")?.parse().map_err(|e| format!("{e}"))?),
            "--output" => output = Some(PathBuf::from(value("--output")?)),
            "--namespace" => options = options.namespace(value("--namespace")?),
            "--bundle" => options = options.bundle(true),
            "--type-name" => {
                let spec = value("--type-name")?;
                let (id, name) = spec
                    .split_once('=')
                    .and_then(|(id, name)| Some((id.parse::<u32>().ok()?, name)))
                    .ok_or_else(|| format!("--type-name {spec}: expected <id>=<Name>"))?;
                options = options.type_name(TypeId(id), name);
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ if input.is_none() => input = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    Ok(Args {
        input: input.ok_or("missing <reflection-file>")?,
        language: language.ok_or("missing --lang")?,
        output: output.ok_or("missing --output")?,
        options,
    })
}

fn run(args: &Args) -> Result<(), String> {
    let bytes = if args.input == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading standard input: {e}"))?;
        bytes
    } else {
        std::fs::read(&args.input).map_err(|e| format!("{}: {e}", args.input))?
    };
    let files = generate_from_reflection(&bytes, args.language, &args.options)
        .map_err(|e| format!("{}: {e}", args.input))?;
    std::fs::create_dir_all(&args.output).map_err(|e| format!("{}: {e}", args.output.display()))?;
    for file in files {
        let path = args.output.join(&file.path);
        std::fs::write(&path, &file.contents).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("generated: {}", file.path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = parse_args(args.into_iter()).and_then(|args| run(&args));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roomcast-codegen: {e}\n\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}
