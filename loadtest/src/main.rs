//! `roomcast-loadtest`: N clients join a Colyseus room and run the default
//! script (a message every `--interval-ms`, a ping every `--ping-ms`) for
//! `--duration` seconds; a progress line on stderr, a JSON summary on
//! stdout or in `--json <file>`. Exits with 0 when at least one client
//! joined, 1 when none did (or the summary could not be written), 2 on
//! invalid arguments.
//!
//! ```text
//! roomcast-loadtest --endpoint http://127.0.0.1:2567 --room world \
//!     --clients 200 --join-rate 50 --duration 30 --message move \
//!     --payload '{"x":1,"y":2}' --interval-ms 100 --pid 12345 --json out.json
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};
use roomcast_loadtest::{DefaultScript, LoadTest, Summary};

fn command() -> Command {
    Command::new("roomcast-loadtest")
        .about("Load-tests a Colyseus room: N clients join and run a script; prints a JSON summary")
        .arg(
            Arg::new("endpoint")
                .long("endpoint")
                .default_value("http://127.0.0.1:2567")
                .help("The server (http://host:port)"),
        )
        .arg(Arg::new("room").long("room").required(true).help("The room name"))
        .arg(
            Arg::new("options")
                .long("options")
                .default_value("{}")
                .help("The join options, as JSON"),
        )
        .arg(
            Arg::new("clients")
                .long("clients")
                .default_value("10")
                .value_parser(value_parser!(usize))
                .help("The number of clients"),
        )
        .arg(
            Arg::new("join-rate")
                .long("join-rate")
                .default_value("0")
                .value_parser(value_parser!(f64))
                .help("Clients started per second (0: all at once)"),
        )
        .arg(
            Arg::new("duration")
                .long("duration")
                .default_value("10")
                .value_parser(value_parser!(f64))
                .help("The test's duration, in seconds"),
        )
        .arg(
            Arg::new("message")
                .long("message")
                .default_value("message")
                .help("The type of the message each client sends"),
        )
        .arg(
            Arg::new("payload")
                .long("payload")
                .default_value("{}")
                .help("Its payload, as JSON (sent as MessagePack)"),
        )
        .arg(
            Arg::new("interval-ms")
                .long("interval-ms")
                .default_value("1000")
                .value_parser(value_parser!(u64))
                .help("Milliseconds between two messages of a client (0: none)"),
        )
        .arg(
            Arg::new("ping-ms")
                .long("ping-ms")
                .default_value("1000")
                .value_parser(value_parser!(u64))
                .help("Milliseconds between two pings of a client, the round trips measured (0: none)"),
        )
        .arg(
            Arg::new("join-timeout")
                .long("join-timeout")
                .default_value("10")
                .value_parser(value_parser!(f64))
                .help("Seconds a join may take before it counts as an error"),
        )
        .arg(
            Arg::new("pid")
                .long("pid")
                .value_parser(value_parser!(u32))
                .help("The server's process id: its CPU and RSS are sampled from /proc"),
        )
        .arg(
            Arg::new("json")
                .long("json")
                .help("Write the JSON summary to this file instead of stdout"),
        )
        .arg(
            Arg::new("quiet")
                .long("quiet")
                .action(ArgAction::SetTrue)
                .help("No progress line"),
        )
}

fn millis(m: &ArgMatches, id: &str) -> Option<Duration> {
    match m.get_one::<u64>(id) {
        Some(0) | None => None,
        Some(&ms) => Some(Duration::from_millis(ms)),
    }
}

fn seconds(m: &ArgMatches, id: &str) -> Result<Duration, String> {
    let s = *m.get_one::<f64>(id).expect("has a default");
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{id}: not a duration: {s}"))
}

fn json(m: &ArgMatches, id: &str) -> Result<serde_json::Value, String> {
    let text = m.get_one::<String>(id).expect("has a default");
    serde_json::from_str(text).map_err(|e| format!("--{id}: invalid JSON: {e}"))
}

fn build(m: &ArgMatches) -> Result<LoadTest, String> {
    let script = DefaultScript {
        message_type: m.get_one::<String>("message").expect("default").clone(),
        payload: json(m, "payload")?,
        send_interval: millis(m, "interval-ms"),
        ping_interval: millis(m, "ping-ms"),
    };
    Ok(LoadTest::new(
        m.get_one::<String>("endpoint").expect("default"),
        m.get_one::<String>("room").expect("required"),
    )
    .options(json(m, "options")?)
    .clients(*m.get_one::<usize>("clients").expect("default"))
    .join_rate(*m.get_one::<f64>("join-rate").expect("default"))
    .duration(seconds(m, "duration")?)
    .join_timeout(seconds(m, "join-timeout")?)
    .server_pid(m.get_one::<u32>("pid").copied())
    .progress(!m.get_flag("quiet"))
    .default_script(script))
}

fn report(summary: &Summary, to: Option<&String>) -> Result<(), String> {
    let text = serde_json::to_string_pretty(summary).map_err(|e| e.to_string())?;
    match to {
        Some(path) if path != "-" => {
            std::fs::write(path, text + "\n").map_err(|e| format!("{path}: {e}"))
        }
        _ => {
            println!("{text}");
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let matches = command().get_matches();
    let test = match build(&matches) {
        Ok(test) => test,
        Err(e) => {
            eprintln!("roomcast-loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("roomcast-loadtest: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let summary = match runtime.block_on(test.run()) {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("roomcast-loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = report(&summary, matches.get_one::<String>("json")) {
        eprintln!("roomcast-loadtest: {e}");
        return ExitCode::FAILURE;
    }
    if summary.joins.succeeded == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn arguments_build_a_test() {
        let m = command()
            .try_get_matches_from([
                "roomcast-loadtest",
                "--room",
                "world",
                "--options",
                r#"{"name":"bot"}"#,
                "--clients",
                "3",
                "--interval-ms",
                "0",
            ])
            .unwrap();
        let test = build(&m).unwrap();
        let debug = format!("{test:?}");
        assert!(debug.contains("\"world\""), "{debug}");
        assert!(debug.contains("clients: 3"), "{debug}");
    }

    #[test]
    fn invalid_json_is_refused() {
        let m = command()
            .try_get_matches_from(["roomcast-loadtest", "--room", "r", "--payload", "{"])
            .unwrap();
        assert!(build(&m).unwrap_err().contains("--payload"));
    }
}
