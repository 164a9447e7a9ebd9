//! `switchyard-bench`: the same workloads against the backend directly,
//! through the router (real Redis store, lease heartbeat on), and through
//! nginx as an equivalent proxy when it is installed; one table with each
//! figure and its ratio to direct.
//!
//! Build the router and this harness in release mode, then run:
//!   cargo build --release -p switchyard-router -p switchyard-bench && target/release/switchyard-bench
//! `--full` runs longer and opens 10,000 idle websockets (for BENCHMARKS.md).

mod backend;
mod load;
mod targets;

use std::{net::SocketAddr, time::Duration};

use clap::{Parser, Subcommand};

use crate::{load::Sample, targets::Target};

#[derive(Debug, Parser)]
#[command(
    name = "switchyard-bench",
    about = "Router vs direct vs nginx, side by side"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Longer runs and 10,000 idle websockets (default: a quick pass under a minute)
    #[arg(long)]
    full: bool,
    /// Skip nginx even when it is installed
    #[arg(long)]
    no_nginx: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the benchmark backend (used by the harness itself)
    Backend {
        #[arg(long)]
        listen: SocketAddr,
    },
}

struct Results {
    small_50: Sample,
    small_500: Sample,
    large: Sample,
    ws: Sample,
    idle_open: Duration,
    idle_failed: usize,
    idle_kib_per_socket: f64,
    redis_per_request: Option<f64>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Backend { listen }) = args.command {
        return backend::serve(listen).await;
    }
    let wanted = 70_000;
    // As root the hard limit can be raised too; elsewhere raise the soft one.
    let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, wanted, wanted);
    match rlimit::increase_nofile_limit(wanted) {
        Ok(n) if n < 25_000 => {
            eprintln!("note: open-file limit is {n}; idle-socket counts are capped to fit")
        }
        Ok(_) => {}
        Err(e) => eprintln!("note: cannot raise the open-file limit: {e}"),
    }
    let (duration, idle) = if args.full {
        (Duration::from_secs(10), 10_000)
    } else {
        (Duration::from_secs(2), 2_000)
    };

    let direct = Target::backend().await?;
    let router = Target::router(direct.addr).await?;
    let nginx = if args.no_nginx {
        None
    } else {
        Target::nginx(direct.addr).await?
    };

    let mut columns = vec![("direct", run(&direct, duration, idle).await)];
    columns.push(("router", run(&router, duration, idle).await));
    if let Some(n) = &nginx {
        columns.push(("nginx", run(n, duration, idle).await));
    } else {
        eprintln!("nginx not installed (apt-get install nginx): its column is skipped");
    }
    print!("{}", table(&columns, duration, idle));
    Ok(())
}

async fn run(target: &Target, duration: Duration, idle: usize) -> Results {
    eprintln!("benchmarking {} at {}", target.name, target.addr);
    let redis_before = target.redis_commands();
    let small_50 = load::http(target.addr, "/small", 50, duration).await;
    let small_500 = load::http(target.addr, "/small", 500, duration).await;
    let large = load::http(target.addr, "/large", 8, duration).await;
    let redis_after = target.redis_commands();
    let ws = load::ws_echo(target.addr, 50, 64, duration).await;
    let rss_before = target.rss_kib();
    let (sockets, idle_open, idle_failed) = load::open_idle(target.addr, idle).await;
    let rss_after = target.rss_kib();
    let opened = sockets.len().max(1);
    drop(sockets);
    eprintln!(
        "  errors: small/50 {}, small/500 {}, large {}, ws echo {}, idle opens failed {}",
        small_50.errors, small_500.errors, large.errors, ws.errors, idle_failed
    );
    let http_requests = (small_50.ops + small_500.ops + large.ops).max(1);
    Results {
        small_50,
        small_500,
        large,
        ws,
        idle_open,
        idle_failed,
        idle_kib_per_socket: rss_after.saturating_sub(rss_before) as f64 / opened as f64,
        redis_per_request: match (redis_before, redis_after) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / http_requests as f64),
            _ => None,
        },
    }
}

fn table(columns: &[(&str, Results)], duration: Duration, idle: usize) -> String {
    use std::fmt::Write;
    let direct = &columns[0].1;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} s per workload, {idle} idle websockets; ratios are to direct\n",
        duration.as_secs()
    );
    let header: Vec<String> = columns.iter().map(|(n, _)| n.to_string()).collect();
    let _ = writeln!(out, "| workload | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(columns.len()));
    type Row<'a> = (&'a str, Box<dyn Fn(&Results) -> f64>, &'a str, bool);
    let rows: Vec<Row> = vec![
        (
            "small response, 50 conns: requests/s",
            Box::new(|r: &Results| r.small_50.rate()),
            "",
            true,
        ),
        (
            "small, 50 conns: p50 ms",
            Box::new(|r: &Results| r.small_50.quantile_ms(0.5)),
            "",
            false,
        ),
        (
            "small, 50 conns: p99 ms",
            Box::new(|r: &Results| r.small_50.quantile_ms(0.99)),
            "",
            false,
        ),
        (
            "small, 50 conns: p99.9 ms",
            Box::new(|r: &Results| r.small_50.quantile_ms(0.999)),
            "",
            false,
        ),
        (
            "small response, 500 conns: requests/s",
            Box::new(|r: &Results| r.small_500.rate()),
            "",
            true,
        ),
        (
            "small, 500 conns: p99 ms",
            Box::new(|r: &Results| r.small_500.quantile_ms(0.99)),
            "",
            false,
        ),
        (
            "1 MiB response, 8 conns: MiB/s",
            Box::new(|r: &Results| r.large.mib_per_sec()),
            "",
            true,
        ),
        (
            "websocket echo 64 B, 50 conns: round trips/s",
            Box::new(|r: &Results| r.ws.rate()),
            "",
            true,
        ),
        (
            "websocket echo: p99 ms",
            Box::new(|r: &Results| r.ws.quantile_ms(0.99)),
            "",
            false,
        ),
        (
            "open idle websockets: s",
            Box::new(|r: &Results| r.idle_open.as_secs_f64()),
            "",
            false,
        ),
        (
            "memory per idle websocket: KiB (process RSS growth)",
            Box::new(|r: &Results| r.idle_kib_per_socket),
            "",
            false,
        ),
    ];
    for (name, f, _, ratio) in &rows {
        let cells: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (_, r))| {
                let v = f(r);
                if i == 0 || !*ratio {
                    format!("{v:.2}")
                } else {
                    format!("{v:.2} ({:.2}x)", v / f(direct).max(1e-9))
                }
            })
            .collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    }
    let errors: Vec<String> = columns
        .iter()
        .map(|(_, r)| {
            format!(
                "{}",
                r.small_50.errors
                    + r.small_500.errors
                    + r.large.errors
                    + r.ws.errors
                    + r.idle_failed as u64
            )
        })
        .collect();
    let _ = writeln!(out, "| errors (all workloads) | {} |", errors.join(" | "));
    let redis: Vec<String> = columns
        .iter()
        .map(|(_, r)| {
            r.redis_per_request
                .map_or("-".into(), |v| format!("{v:.5}"))
        })
        .collect();
    let _ = writeln!(
        out,
        "| Redis commands per HTTP request | {} |",
        redis.join(" | ")
    );
    out
}
