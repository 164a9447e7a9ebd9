//! `switchyard list` (alias `status`).

use std::fmt::Write;

use clap::Args;
use switchyard_core::{DeploymentState, UnixTime, time::human_duration};

use crate::{Context, Failure};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Redraw every INTERVAL (default 2s) until Ctrl-C; with --json, one object per line
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "2s")]
    pub watch: Option<String>,
}

pub async fn run(ctx: &Context, args: ListArgs) -> Result<(), Failure> {
    let Some(every) = args.watch else {
        let (text, json) = render(ctx).await?;
        ctx.say(|| text, || json);
        return Ok(());
    };
    let every = switchyard_core::config::parse_duration(&every)
        .ok()
        .filter(|d| *d >= std::time::Duration::from_millis(100))
        .ok_or_else(|| {
            crate::usage(format!(
                "invalid value {every:?} for --watch: a duration of at least 100ms, such as 2s"
            ))
        })?;
    watch(ctx, every).await
}

/// The table redrawn in place on a terminal (elsewhere, one table after
/// another), until Ctrl-C. A store that fails for a moment is shown as
/// such and asked again: a watch outlives a Redis restart.
async fn watch(ctx: &Context, every: std::time::Duration) -> Result<(), Failure> {
    use std::io::{IsTerminal, Write as _};
    let terminal = std::io::stdout().is_terminal() && !ctx.json;
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let frame = render(ctx).await;
        let mut out = String::new();
        if terminal {
            // Home and clear: the table replaces the last one.
            out.push_str("\x1b[H\x1b[2J");
        }
        match frame {
            Ok((_, json)) if ctx.json => {
                let _ = writeln!(out, "{}", serde_json::to_string(&json).unwrap_or_default());
            }
            Ok((text, _)) => {
                let _ = writeln!(
                    out,
                    "{} (every {every:?}; Ctrl-C stops)",
                    UnixTime::now().rfc3339(),
                );
                out.push_str(&text);
                if !terminal {
                    out.push('\n');
                }
            }
            Err(e) if ctx.json => {
                let line = serde_json::json!({ "error": format!("{:#}", e.error) });
                let _ = writeln!(out, "{line}");
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "{}: {:#} (asking again)",
                    UnixTime::now().rfc3339(),
                    e.error
                );
            }
        }
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`| head`) ends the watch like Ctrl-C.
        if stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return Ok(());
        }
        drop(stdout);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = &mut ctrl_c => return Ok(()),
        }
    }
}

/// The table and its JSON form, read from the store once.
async fn render(ctx: &Context) -> Result<(String, serde_json::Value), Failure> {
    let snap = super::snapshot(ctx).await?;
    let leases = ctx.store.live_leases().await?;
    let stats = ctx.store.request_stats(UnixTime::now(), 5).await?;
    let now = UnixTime::now();
    let next = next_retirement(ctx, &snap, &leases, now).await?;
    let replicas = ctx.store.replicas().await?;
    let pins = super::router_pins(&ctx.store).await?;
    let routers = routers_line(&replicas);
    let mut rows: Vec<_> = snap.deployments.values().collect();
    rows.sort_by(|a, b| {
        let key = |d: &switchyard_core::Deployment| d.created_at.map_or(0.0, UnixTime::secs);
        key(b).total_cmp(&key(a))
    });
    let ago = |t: Option<UnixTime>| t.map_or("-".to_string(), |t| human_duration(now.since(t)));
    let text = {
        let mut out = String::new();
        let header = [
            "DEPLOYMENT",
            "STATE",
            "EPOCH",
            "AGE",
            "DRAINING",
            "WS",
            "LAST SEEN",
            "5XX/REQ",
            "BACKEND",
        ];
        let cells: Vec<(bool, [String; 9])> = rows
            .iter()
            .map(|d| {
                let share = match &snap.rollout {
                    Some(r) if r.deployment_id == d.deployment_id => {
                        format!("{} ({}%)", d.state, r.percent)
                    }
                    _ => d.state.to_string(),
                };
                let s = stats.get(&d.deployment_id).copied().unwrap_or_default();
                (
                    snap.active.as_ref() == Some(&d.deployment_id),
                    [
                        d.deployment_id.to_string(),
                        share,
                        d.epoch().to_string(),
                        ago(d.created_at),
                        if d.state == DeploymentState::Draining {
                            ago(d.drain_started_at)
                        } else {
                            "-".into()
                        },
                        leases
                            .get(&d.deployment_id)
                            .copied()
                            .unwrap_or(0)
                            .to_string(),
                        ago(d.last_seen_at),
                        format!("{}/{}", s.errors_5xx, s.requests),
                        switchyard_core::redact::url(&d.backend_url),
                    ],
                )
            })
            .collect();
        // Each column as wide as its widest cell, header included, so
        // long ids and rollout shares never push the rest out of line.
        let mut widths = header.map(str::len);
        for (_, row) in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |out: &mut String, mark: &str, row: [&str; 9]| {
            let _ = write!(out, "{mark} ");
            for (i, (c, w)) in row.iter().zip(widths).enumerate() {
                // Names and text left, numbers and ages right.
                let last = row.len() - 1;
                let left = i <= 1 || i == last;
                let sep = if i == last { "" } else { " " };
                let _ = match (left, i == last) {
                    (_, true) => write!(out, " {c}"),
                    (true, false) => write!(out, "{c:<w$}{sep}"),
                    (false, false) => write!(out, "{c:>w$}{sep}"),
                };
            }
            out.push('\n');
        };
        line(&mut out, " ", header);
        for (active, row) in &cells {
            line(
                &mut out,
                if *active { "*" } else { " " },
                row.each_ref().map(String::as_str),
            );
        }
        if rows.is_empty() {
            out.push_str("  (no deployments)\n");
        }
        let _ = writeln!(out, "{}", next.line);
        let _ = match &pins {
            Some(p) => writeln!(out, "{}", p.describe()),
            None => writeln!(
                out,
                "pins: unknown: no router is heartbeating (each reports its pin settings on every beat)"
            ),
        };
        let _ = writeln!(out, "{routers}");
        out
    };
    let json = {
        let list: Vec<_> = rows
                .iter()
                .map(|d| {
                    let s = stats.get(&d.deployment_id).copied().unwrap_or_default();
                    serde_json::json!({
                        "deployment_id": d.deployment_id,
                        "state": d.state,
                        "active": snap.active.as_ref() == Some(&d.deployment_id),
                        "rollout_percent": snap.rollout.as_ref().filter(|r| r.deployment_id == d.deployment_id).map(|r| r.percent),
                        "backend_url": switchyard_core::redact::url(&d.backend_url),
                        "service_name": d.service_name,
                        "state_epoch": d.epoch(),
                        "created_at": d.created_at,
                        "drain_started_at": d.drain_started_at,
                        "last_seen_at": d.last_seen_at,
                        "live_websockets": leases.get(&d.deployment_id).copied().unwrap_or(0),
                        "requests": s.requests,
                        "errors_5xx": s.errors_5xx,
                    })
                })
                .collect();
        serde_json::json!({
            "active": snap.active,
            "version": snap.version,
            "deployments": list,
            "next_retirement": next.json,
            "janitor_policy": next.policy,
            "router_pins": pins,
            "routers": replicas.iter().map(|r| serde_json::json!({
                "replica": r.replica,
                "seen": r.seen,
                "report": r.report,
            })).collect::<Vec<_>>(),
        })
    };
    Ok((text, json))
}

/// One line on the live routers: how many, whether any refuses the store,
/// the snapshot versions they route on.
fn routers_line(replicas: &[switchyard_store::ReplicaView]) -> String {
    if replicas.is_empty() {
        return "routers: none heartbeating".into();
    }
    let mut versions: Vec<u64> = replicas
        .iter()
        .filter_map(|r| r.report.as_ref()?.snapshot_version)
        .collect();
    versions.sort_unstable();
    versions.dedup();
    let diverged = replicas
        .iter()
        .filter(|r| r.report.as_ref().is_some_and(|r| r.store_diverged))
        .count();
    let versions = match versions.as_slice() {
        [] => "no snapshot yet".to_string(),
        [v] => format!("snapshot version {v}"),
        vs => format!(
            "snapshot versions {}",
            vs.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        ),
    };
    let n = replicas.len();
    let mut line = format!(
        "routers: {n} {} heartbeating, {versions}",
        if n == 1 { "replica" } else { "replicas" }
    );
    if diverged > 0 {
        line.push_str(&format!(
            "; {diverged} refusing the store's snapshot (see the router log)"
        ));
    }
    line
}

struct NextRetirement {
    line: String,
    json: serde_json::Value,
    policy: serde_json::Value,
}

/// What the janitor will retire next, by the policy it last published.
/// Backend session counts are only known to the janitor, so this uses
/// leases and activity.
async fn next_retirement(
    ctx: &Context,
    snap: &switchyard_core::Snapshot,
    leases: &std::collections::BTreeMap<switchyard_core::DeploymentId, u64>,
    now: UnixTime,
) -> Result<NextRetirement, Failure> {
    use switchyard_retention::plan::{Action, plan};
    let Some(policy) = switchyard_retention::published_policy(&ctx.store).await? else {
        return Ok(NextRetirement {
            line:
                "next to retire: unknown until the janitor has run once (it publishes its policy)"
                    .into(),
            json: serde_json::Value::Null,
            policy: serde_json::Value::Null,
        });
    };
    let actions = plan(
        snap,
        leases,
        &std::collections::BTreeMap::new(),
        now,
        &policy,
    );
    let due = actions.iter().find(|a| !matches!(a, Action::Keep { .. }));
    let (line, json) = match (due, actions.first()) {
        (Some(a), _) => {
            let (verb, id, reason) = match a {
                Action::Reload {
                    deployment_id,
                    reason,
                    ..
                } => ("reload and retire", deployment_id, reason),
                Action::Delete {
                    deployment_id,
                    reason,
                    ..
                } => ("delete", deployment_id, reason),
                Action::Keep {
                    deployment_id,
                    reason,
                    ..
                } => ("keep", deployment_id, reason),
            };
            (
                format!("next to retire: {id}, on the janitor's next run ({verb}: {reason})"),
                serde_json::json!({ "deployment_id": id, "due": true, "action": verb, "reason": reason }),
            )
        }
        (
            None,
            Some(Action::Keep {
                deployment_id,
                reason,
                ..
            }),
        ) => (
            format!("next to retire: {deployment_id}, the oldest draining; not yet ({reason})"),
            serde_json::json!({ "deployment_id": deployment_id, "due": false, "reason": reason }),
        ),
        _ => (
            "next to retire: nothing is draining".into(),
            serde_json::Value::Null,
        ),
    };
    Ok(NextRetirement {
        line,
        json,
        policy: serde_json::to_value(&policy).unwrap_or_default(),
    })
}
