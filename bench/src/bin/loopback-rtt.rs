//! The floor under the work queue's latency on this machine: the round trip of one byte
//! over loopback TCP (Nagle off) between two processes, blocking sockets, nothing else.
//! A queue task needs two such round trips (client ↔ coordinator, coordinator ↔ worker).
//! Prints one JSON line with the median and 99th percentile in milliseconds.
//!
//!     loopback-rtt [ROUNDS]
//!
//! The echoing side is this program again, started as `loopback-rtt --echo PORT`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Instant;

use weft_bench::percentile;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("--echo") => echo(args.next().unwrap_or_default().parse()?),
        rounds => measure(rounds.map_or(Ok(20_000), str::parse)?),
    }
}

fn echo(port: u16) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    let mut byte = [0u8; 1];
    while stream.read(&mut byte)? == 1 {
        stream.write_all(&byte)?;
    }
    Ok(())
}

fn measure(rounds: usize) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--echo", &port.to_string()])
        .spawn()?;
    let (mut stream, _) = listener.accept()?;
    stream.set_nodelay(true)?;
    let mut byte = [7u8; 1];
    let mut round_trips = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        stream.write_all(&byte)?;
        stream.read_exact(&mut byte)?;
        round_trips.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    drop(stream);
    child.wait()?;
    round_trips.sort_by(f64::total_cmp);
    println!(
        "{{\"rounds\": {rounds}, \"p50_ms\": {:.4}, \"p99_ms\": {:.4}}}",
        percentile(&round_trips, 50.0),
        percentile(&round_trips, 99.0)
    );
    Ok(())
}
