//! `switchyard-bench`: the same workloads against the backend directly,
//! through the router (real Redis store, lease heartbeat on), and through
//! nginx as an equivalent proxy when it is installed; one table with each
//! figure and its ratio to direct.
//!
//! Build the router and this harness in release mode, then run:
//!   cargo build --release -p switchyard-router -p switchyard-bench && target/release/switchyard-bench
//! `--full` runs longer and opens 10,000 idle websockets (for BENCHMARKS.md);
//! `--only` picks workloads; `--load-threads` sizes the load generator.

mod backend;
mod external;
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
    /// Skip HAProxy even when it is installed
    #[arg(long)]
    no_haproxy: bool,
    /// Have nginx and HAProxy also write what the router adds: a request
    /// id and X-Forwarded-* to the backend, the request id, deployment,
    /// Server-Timing and Vary to the client (the same bytes each way)
    #[arg(long)]
    same_job: bool,
    /// Drive the small-response workloads with an outside tool instead of
    /// the harness's load generator: wrk (HTTP/1.1) or h2load (HTTP/2)
    #[arg(long, value_enum)]
    tool: Option<external::Tool>,
    /// With --tool: pin every request to the bench deployment
    /// (`x-pulse-deployment`): its id, or with --strict a signed token
    #[arg(long, requires = "tool")]
    pin: bool,
    /// Run the router in strict mode (signed pins, a bench secret)
    #[arg(long)]
    strict: bool,
    /// Extra router setting, KEY=VALUE (repeatable), e.g.
    /// SWITCHYARD_ACCESS_LOG=1 or SWITCHYARD_ASSET_PATHS=off
    #[arg(long, value_parser = key_value)]
    router_env: Vec<(String, String)>,
    /// Router worker threads; 1 (the default) matches nginx's one worker
    /// and HAProxy's one thread
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    router_workers: u16,
    /// Run only these workloads (comma-separated; default: all)
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Workload>,
    /// Load-generator threads; 1 (the default) matches `wrk -t1`, so the
    /// proxy under test gets the rest of the machine
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    load_threads: u16,
    /// How many idle WebSockets the idle workload opens (default: 2,000,
    /// or 10,000 with --full)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=50_000))]
    idle: Option<u32>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the benchmark backend (used by the harness itself)
    Backend {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    /// 100-byte responses on 50 connections
    Small50,
    /// 100-byte responses on 500 connections
    Small500,
    /// 1 MiB responses on 8 connections
    Large,
    /// WebSocket echo, 64-byte messages on 50 connections
    Ws,
    /// Opening idle WebSockets and the memory they hold
    Idle,
}

#[derive(Default)]
struct Results {
    small_50: Option<Sample>,
    small_500: Option<Sample>,
    large: Option<Sample>,
    ws: Option<Sample>,
    idle: Option<Idle>,
    redis_per_request: Option<f64>,
}

struct Idle {
    open: Duration,
    failed: usize,
    kib_per_socket: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Backend { listen, threads }) = args.command {
        let runtime = if threads == 1 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .enable_all()
                .build()?
        };
        return runtime.block_on(backend::serve(listen));
    }
    let runtime = if args.load_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(args.load_threads))
            .enable_all()
            .build()?
    };
    runtime.block_on(harness(args))
}

async fn harness(args: Args) -> anyhow::Result<()> {
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
    let plan = Plan {
        duration: Duration::from_secs(if args.full { 10 } else { 2 }),
        idle: args
            .idle
            .map_or(if args.full { 10_000 } else { 2_000 }, |n| n as usize),
        only: args.only,
    };

    let direct = Target::backend().await?;
    let mut router_env = args.router_env.clone();
    if args.strict {
        router_env.push(("SWITCHYARD_PIN_SECRET".into(), BENCH_SECRET.into()));
    }
    let router = Target::router(direct.addr, args.router_workers, &router_env).await?;
    let nginx = if args.no_nginx {
        None
    } else {
        Target::nginx(direct.addr, args.same_job).await?
    };
    let haproxy = if args.no_haproxy {
        None
    } else {
        Target::haproxy(direct.addr, args.same_job).await?
    };

    if let Some(tool) = args.tool {
        let mut targets = vec![&direct, &router];
        targets.extend(nginx.as_ref());
        targets.extend(haproxy.as_ref());
        let pin = args.pin.then(|| pin_header(args.strict)).transpose()?;
        print!(
            "{}",
            external::table(tool, &targets, plan.duration, pin.as_deref(), args.same_job).await?
        );
        return Ok(());
    }
    let mut columns = vec![("direct".to_string(), run(&direct, &plan).await)];
    columns.push(("router".to_string(), run(&router, &plan).await));
    if let Some(n) = &nginx {
        columns.push((n.label(args.same_job), run(n, &plan).await));
    } else if !args.no_nginx {
        eprintln!("nginx not installed (apt-get install nginx): its column is skipped");
    }
    if let Some(h) = &haproxy {
        columns.push((h.label(args.same_job), run(h, &plan).await));
    } else if !args.no_haproxy {
        eprintln!("haproxy not installed (apt-get install haproxy): its column is skipped");
    }
    print!("{}", table(&columns, &plan, args.load_threads));
    Ok(())
}

/// The strict-mode secret the bench's router runs with.
const BENCH_SECRET: &str = "switchyard-bench-secret-0123456789abcdef";

/// The pin header for the bench deployment: its id, or a token minted
/// with the bench secret, as the router would mint it.
fn pin_header(strict: bool) -> anyhow::Result<String> {
    let id = switchyard_core::DeploymentId::new("bench")?;
    let value = if strict {
        let keys = switchyard_core::pin::PinKeys::new(BENCH_SECRET.as_bytes())
            .map_err(|e| anyhow::anyhow!(e))?;
        keys.mint(
            &id,
            switchyard_core::UnixTime::now(),
            Duration::from_secs(3600),
        )
    } else {
        id.to_string()
    };
    Ok(format!("x-pulse-deployment: {value}"))
}

fn key_value(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{raw:?} is not KEY=VALUE"))
}

struct Plan {
    duration: Duration,
    idle: usize,
    only: Vec<Workload>,
}

impl Plan {
    fn wants(&self, w: Workload) -> bool {
        self.only.is_empty() || self.only.contains(&w)
    }
}

async fn run(target: &Target, plan: &Plan) -> Results {
    eprintln!("benchmarking {} at {}", target.name, target.addr);
    let duration = plan.duration;
    let mut r = Results::default();
    // Idle sockets first, on a fresh process: its RSS growth is then the
    // sockets' alone, not memory that earlier workloads freed and the
    // allocator reuses, and no pooled backend connections hold file
    // descriptors yet.
    if plan.wants(Workload::Idle) {
        let rss_before = target.rss_kib();
        let (sockets, open, failed) = load::open_idle(target.addr, plan.idle).await;
        let rss_after = target.rss_kib();
        let opened = sockets.len().max(1);
        drop(sockets);
        r.idle = Some(Idle {
            open,
            failed,
            kib_per_socket: rss_after.saturating_sub(rss_before) as f64 / opened as f64,
        });
        target.settle().await;
    }
    let redis_before = target.redis_commands();
    if plan.wants(Workload::Small50) {
        r.small_50 = Some(measured(target, load::http(target.addr, "/small", 50, duration)).await);
    }
    if plan.wants(Workload::Small500) {
        r.small_500 =
            Some(measured(target, load::http(target.addr, "/small", 500, duration)).await);
    }
    if plan.wants(Workload::Large) {
        r.large = Some(measured(target, load::http(target.addr, "/large", 8, duration)).await);
    }
    let redis_after = target.redis_commands();
    let http_requests: u64 = [&r.small_50, &r.small_500, &r.large]
        .into_iter()
        .flatten()
        .map(|s| s.ops)
        .sum();
    if let (Some(b), Some(a)) = (redis_before, redis_after)
        && http_requests > 0
    {
        r.redis_per_request = Some(a.saturating_sub(b) as f64 / http_requests as f64);
    }
    if plan.wants(Workload::Ws) {
        r.ws = Some(measured(target, load::ws_echo(target.addr, 50, 64, duration)).await);
    }
    eprintln!("  errors: {}", r.errors());
    r
}

/// Runs a workload, noting the CPU time the target's process spent on it.
async fn measured(target: &Target, workload: impl std::future::Future<Output = Sample>) -> Sample {
    let before = target.cpu_time();
    let mut sample = workload.await;
    sample.cpu = target.cpu_time().saturating_sub(before);
    sample
}

impl Results {
    fn errors(&self) -> u64 {
        let samples: u64 = [&self.small_50, &self.small_500, &self.large, &self.ws]
            .into_iter()
            .flatten()
            .map(|s| s.errors)
            .sum();
        samples + self.idle.as_ref().map_or(0, |i| i.failed as u64)
    }
}

fn table(columns: &[(String, Results)], plan: &Plan, load_threads: u16) -> String {
    use std::fmt::Write;
    let direct = &columns[0].1;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} s per workload, {} idle websockets, {load_threads} load-generator thread(s); ratios are to direct\n",
        plan.duration.as_secs(),
        plan.idle,
    );
    let header: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let _ = writeln!(out, "| workload | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(columns.len()));
    // (label, figure, whether a ratio to direct means something)
    type Figure = fn(&Results) -> Option<f64>;
    let rows: [(&str, Figure, bool); 16] = [
        (
            "small response, 50 conns: requests/s",
            |r| r.small_50.as_ref().map(Sample::rate),
            true,
        ),
        (
            "small, 50 conns: p50 ms",
            |r| r.small_50.as_ref().map(|s| s.quantile_ms(0.5)),
            false,
        ),
        (
            "small, 50 conns: p99 ms",
            |r| r.small_50.as_ref().map(|s| s.quantile_ms(0.99)),
            false,
        ),
        (
            "small, 50 conns: p99.9 ms",
            |r| r.small_50.as_ref().map(|s| s.quantile_ms(0.999)),
            false,
        ),
        (
            "small, 50 conns: CPU µs per request (backend / proxy process)",
            |r| r.small_50.as_ref().map(Sample::cpu_us_per_op),
            false,
        ),
        (
            "small response, 500 conns: requests/s",
            |r| r.small_500.as_ref().map(Sample::rate),
            true,
        ),
        (
            "small, 500 conns: p99 ms",
            |r| r.small_500.as_ref().map(|s| s.quantile_ms(0.99)),
            false,
        ),
        (
            "small, 500 conns: CPU µs per request (backend / proxy process)",
            |r| r.small_500.as_ref().map(Sample::cpu_us_per_op),
            false,
        ),
        (
            "1 MiB response, 8 conns: MiB/s",
            |r| r.large.as_ref().map(Sample::mib_per_sec),
            true,
        ),
        (
            "websocket echo 64 B, 50 conns: round trips/s",
            |r| r.ws.as_ref().map(Sample::rate),
            true,
        ),
        (
            "websocket echo: p50 ms",
            |r| r.ws.as_ref().map(|s| s.quantile_ms(0.5)),
            false,
        ),
        (
            "websocket echo: p99 ms",
            |r| r.ws.as_ref().map(|s| s.quantile_ms(0.99)),
            false,
        ),
        (
            "websocket echo: CPU µs per round trip (backend / proxy process)",
            |r| r.ws.as_ref().map(Sample::cpu_us_per_op),
            false,
        ),
        (
            "open idle websockets: s",
            |r| r.idle.as_ref().map(|i| i.open.as_secs_f64()),
            false,
        ),
        (
            "memory per idle websocket: KiB (process RSS growth)",
            |r| r.idle.as_ref().map(|i| i.kib_per_socket),
            false,
        ),
        (
            "idle websocket opens that failed",
            |r| r.idle.as_ref().map(|i| i.failed as f64),
            false,
        ),
    ];
    for (name, figure, ratio) in rows {
        if columns.iter().all(|(_, r)| figure(r).is_none()) {
            continue;
        }
        let cells: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (_, r))| match (figure(r), figure(direct)) {
                (None, _) => "-".into(),
                (Some(v), Some(d)) if i > 0 && ratio => format!("{v:.2} ({:.2}x)", v / d.max(1e-9)),
                (Some(v), _) => format!("{v:.2}"),
            })
            .collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    }
    let errors: Vec<String> = columns
        .iter()
        .map(|(_, r)| r.errors().to_string())
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
