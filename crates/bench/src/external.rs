//! The same targets measured by load generators nobody here wrote: `wrk`
//! (HTTP/1.1, Debian `wrk`) and `h2load` (HTTP/2 with prior knowledge,
//! Debian `nghttp2-client`), so the harness's own figures can be checked
//! against tools with their own timing. CPU per request comes from the
//! target's scheduler counters, as in the harness.

use std::{process::Command, time::Duration};

use crate::targets::Target;

/// One tool run against one target.
#[derive(Debug, Default, Clone)]
pub struct Run {
    pub requests_per_sec: f64,
    /// wrk reports percentiles; h2load does not.
    pub p99_ms: Option<f64>,
    pub cpu_us_per_request: f64,
    pub failed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tool {
    Wrk,
    H2load,
}

impl Tool {
    pub fn program(self) -> &'static str {
        match self {
            Tool::Wrk => "wrk",
            Tool::H2load => "h2load",
        }
    }
}

/// Runs `tool` with `conns` connections for `duration` against `target`.
/// `header` (`name: value`) goes on every request.
pub fn run(
    tool: Tool,
    target: &Target,
    conns: u32,
    duration: Duration,
    header: Option<&str>,
) -> anyhow::Result<Run> {
    let secs = duration.as_secs().max(1).to_string();
    let conns = conns.to_string();
    let mut cmd = Command::new(tool.program());
    match tool {
        Tool::Wrk => cmd
            .args(["-t1", "-c", &conns, "-d", &format!("{secs}s"), "--latency"])
            .arg(format!("http://{}/small", target.addr)),
        Tool::H2load => cmd
            .args(["-t1", "-c", &conns, "-m1", "-D", &secs])
            .arg(format!("http://{}/small", target.h2)),
    };
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    let cpu_before = target.cpu_time();
    let out = cmd.output().map_err(|e| {
        anyhow::anyhow!(
            "cannot run {} ({e}); apt-get install {}",
            tool.program(),
            match tool {
                Tool::Wrk => "wrk",
                Tool::H2load => "nghttp2-client",
            }
        )
    })?;
    let cpu = target.cpu_time().saturating_sub(cpu_before);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        anyhow::bail!(
            "{} failed: {}{}",
            tool.program(),
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (rate, done, p99, failed) = match tool {
        Tool::Wrk => parse_wrk(&text)?,
        Tool::H2load => parse_h2load(&text)?,
    };
    Ok(Run {
        requests_per_sec: rate,
        p99_ms: p99,
        cpu_us_per_request: cpu.as_secs_f64() * 1e6 / done.max(1) as f64,
        failed,
    })
}

/// Requests per second, requests done, p99 and errors from wrk's output.
fn parse_wrk(text: &str) -> anyhow::Result<(f64, u64, Option<f64>, u64)> {
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_owned()))
    };
    let rate: f64 = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no Requests/sec in wrk's output: {text}"))?;
    // "  123456 requests in 10.00s, 20.00MB read"
    let done: u64 = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let p99 = field("99%").and_then(|v| duration_ms(&v));
    // "Non-2xx or 3xx responses: N" and "Socket errors: connect A, read B, write C, timeout D"
    let mut failed: u64 = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if let Some(errors) = field("Socket errors:") {
        failed += errors
            .split(',')
            .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok((rate, done, p99, failed))
}

/// wrk prints durations as `850.00us`, `1.23ms` or `1.05s`.
fn duration_ms(v: &str) -> Option<f64> {
    let (n, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    n.parse::<f64>().ok().map(|n| n * scale)
}

/// From h2load: "finished in 10.00s, 45000.00 req/s, ..." and
/// "requests: T total, S started, D done, OK succeeded, F failed, E errored, ...".
fn parse_h2load(text: &str) -> anyhow::Result<(f64, u64, Option<f64>, u64)> {
    let rate: f64 = text
        .lines()
        .find(|l| l.starts_with("finished in"))
        .and_then(|l| {
            l.split(", ")
                .find_map(|p| p.strip_suffix(" req/s"))?
                .parse()
                .ok()
        })
        .ok_or_else(|| anyhow::anyhow!("no req/s in h2load's output: {text}"))?;
    let counts = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .ok_or_else(|| anyhow::anyhow!("no request counts in h2load's output: {text}"))?;
    let count = |what: &str| {
        counts
            .split(", ")
            .find_map(|p| p.trim_start_matches("requests: ").strip_suffix(what))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let done = count(" succeeded");
    let failed = count(" failed") + count(" errored") + count(" timeout");
    Ok((rate, done, None, failed))
}

/// Small responses at 50 and 500 connections through `tool`, one column
/// per target.
pub async fn table(
    tool: Tool,
    targets: &[&Target],
    duration: Duration,
    header: Option<&str>,
    same_job: bool,
) -> anyhow::Result<String> {
    use std::fmt::Write;
    let mut out = String::new();
    let names: Vec<String> = targets.iter().map(|t| t.label(same_job)).collect();
    let _ = writeln!(
        out,
        "\n{} -t1, {} s per run, 100-byte responses; ratios are to direct\n",
        tool.program(),
        duration.as_secs()
    );
    let _ = writeln!(out, "| workload | {} |", names.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(targets.len()));
    for conns in [50, 500] {
        let mut runs = vec![];
        for t in targets {
            eprintln!("{} -c{conns} against {}", tool.program(), t.name);
            // Blocking is fine here: the targets are other processes.
            runs.push(run(tool, t, conns, duration, header)?);
            t.settle().await;
        }
        let direct = runs[0].requests_per_sec.max(1e-9);
        let row = |label: &str, f: &dyn Fn(&Run) -> String| {
            format!(
                "| {label} | {} |\n",
                runs.iter().map(f).collect::<Vec<_>>().join(" | ")
            )
        };
        out.push_str(&row(&format!("{conns} conns: requests/s"), &|r| {
            format!(
                "{:.0} ({:.2}x)",
                r.requests_per_sec,
                r.requests_per_sec / direct
            )
        }));
        if tool == Tool::Wrk {
            out.push_str(&row(&format!("{conns} conns: p99 ms"), &|r| {
                r.p99_ms.map_or("-".into(), |p| format!("{p:.2}"))
            }));
        }
        out.push_str(&row(
            &format!("{conns} conns: CPU µs per request (backend / proxy process)"),
            &|r| format!("{:.2}", r.cpu_us_per_request),
        ));
        out.push_str(&row(&format!("{conns} conns: failed requests"), &|r| {
            r.failed.to_string()
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk() {
        let out = "Running 2s test @ http://127.0.0.1:1/small\n  1 threads and 50 connections\n  Latency Distribution\n     50%  800.00us\n     99%    3.50ms\n  81234 requests in 2.00s, 10.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\nRequests/sec:  40617.00\n";
        let (rate, done, p99, failed) = parse_wrk(out).unwrap();
        assert_eq!((rate, done, failed), (40617.0, 81234, 3));
        assert_eq!(p99, Some(3.5));
    }

    #[test]
    fn reads_h2load() {
        let out = "finished in 2.00s, 30000.50 req/s, 3.00MB/s\nrequests: 60001 total, 60001 started, 60001 done, 60000 succeeded, 1 failed, 0 errored, 0 timeout\n";
        let (rate, done, _, failed) = parse_h2load(out).unwrap();
        assert_eq!((rate, done, failed), (30000.5, 60000, 1));
    }
}
