//! The real `switchyard` binary against a real Redis, real backends and,
//! where a command checks through it, a real router (static platform).

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use switchyard_testkit::{Backend, RedisServer};

use support::Cli;

fn state(list: &serde_json::Value, id: &str) -> String {
    list["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["deployment_id"] == id)
        .map_or("absent".into(), |d| {
            d["state"].as_str().unwrap().to_string()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_promote_rollback_rollout_and_delete_on_the_static_platform() {
    let redis = RedisServer::start();
    let cli = Cli {
        redis_url: redis.url(),
    };
    let (v1, v2, v3) = (
        Backend::start("v1").await,
        Backend::start("v2").await,
        Backend::start("v3").await,
    );

    let out = cli.ok(&[
        "deploy",
        "--url",
        &v1.url(),
        "--deployment-id",
        "v1",
        "--health-path",
        "/",
        "--json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["deployment_id"], "v1");
    assert_eq!(json["state"], "active");
    cli.ok(&[
        "deploy",
        "--url",
        &v2.url(),
        "--deployment-id",
        "v2",
        "--health-path",
        "/",
    ]);
    let l = cli.list();
    assert_eq!(l["active"], "v2");
    assert_eq!(state(&l, "v1"), "draining");

    // Rollback is instant: v1 serves again, v2 drains.
    assert!(cli.ok(&["rollback"]).contains("v1 is active"));
    let l = cli.list();
    assert_eq!(
        (state(&l, "v1").as_str(), state(&l, "v2").as_str()),
        ("active", "draining")
    );

    // A preview, then a 10% rollout of it, then rollback stops the rollout.
    cli.ok(&[
        "deploy",
        "--url",
        &v3.url(),
        "--deployment-id",
        "v3",
        "--health-path",
        "/",
        "--no-promote",
    ]);
    assert_eq!(state(&cli.list(), "v3"), "pending");
    cli.ok(&["promote", "v3", "--percent", "10"]);
    let l = cli.list();
    let v3_row = l["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["deployment_id"] == "v3")
        .unwrap()
        .clone();
    assert_eq!(v3_row["rollout_percent"], 10);
    assert!(cli.ok(&["rollback"]).contains("rollout of v3 stopped"));
    assert!(
        cli.list()["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["rollout_percent"].is_null())
    );

    // The active deployment can never be deleted.
    let err = cli.fails(&["delete", "--deployment-id", "v1", "--yes"], 2);
    assert!(err.contains("active deployment"), "{err}");
    // Deleting needs confirmation off a terminal.
    let err = cli.fails(&["delete", "--deployment-id", "v2"], 2);
    assert!(err.contains("--yes"), "{err}");
    cli.ok(&["delete", "--deployment-id", "v2", "--yes"]);
    assert_eq!(state(&cli.list(), "v2"), "absent");

    // Human listing marks the active deployment.
    let text = cli.ok(&["status"]);
    assert!(text.lines().any(|l| l.starts_with("* v1")), "{text}");

    // Every change is in the journal, oldest last, told by the CLI.
    cli.ok(&["revoke", "v3", "--yes"]);
    let store = switchyard_store::RedisStore::new(&switchyard_store::RedisSettings::new(
        redis.url(),
        switchyard_core::names::DEFAULT_PREFIX,
    ))
    .unwrap();
    use switchyard_store::{JournalKind::*, Store};
    let journal = store.journal(50).await.unwrap();
    let told: Vec<_> = journal
        .iter()
        .rev()
        .map(|e| (e.kind, e.deployment_id.as_ref().unwrap().to_string()))
        .collect();
    let expected = [
        (Registered, "v1"),
        (Promoted, "v1"),
        (Registered, "v2"),
        (Promoted, "v2"),
        (RolledBack, "v1"),
        (Registered, "v3"),
        (Rollout, "v3"),
        (RolledBack, "v3"),
        (Deleted, "v2"),
        (Revoked, "v3"),
    ]
    .map(|(k, id)| (k, id.to_string()));
    assert_eq!(told, expected);
    assert!(journal.iter().all(|e| e.actor == "cli"));
    assert_eq!(journal[2].detail, "rollout stopped at 10%");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_health_check_leaves_the_active_deployment_serving() {
    let redis = RedisServer::start();
    let cli = Cli {
        redis_url: redis.url(),
    };
    let v1 = Backend::start("v1").await;
    cli.ok(&[
        "deploy",
        "--url",
        &v1.url(),
        "--deployment-id",
        "v1",
        "--health-path",
        "/",
    ]);
    let err = cli.fails(
        &[
            "deploy",
            "--url",
            &v1.url(),
            "--deployment-id",
            "broken",
            "--health-path",
            "/status/500",
            "--timeout",
            "1s",
        ],
        1,
    );
    assert!(
        err.contains("failed its health check") && err.contains("v1 keeps serving"),
        "{err}"
    );
    let l = cli.list();
    assert_eq!(l["active"], "v1");
    assert_eq!(
        state(&l, "broken"),
        "absent",
        "the half-made deployment is removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors() {
    let redis = RedisServer::start();
    let cli = Cli {
        redis_url: redis.url(),
    };
    let v1 = Backend::start("v1").await;
    let err = cli.fails(&["promote", "Not_Valid"], 2);
    assert!(
        err.contains("does not start with a lowercase letter or digit")
            && err.contains("1 to 63 characters: lowercase letters, digits and '-'"),
        "{err}"
    );
    let err = cli.fails(&["promote", "ghost"], 2);
    assert!(err.contains("does not exist"), "{err}");
    let err = cli.fails(&["deploy", "--url", "ftp://x", "--deployment-id", "a"], 2);
    assert!(err.contains("http://"), "{err}");
    let err = cli.fails(&["deploy", "--deployment-id", "a"], 2);
    assert!(err.contains("--url"), "{err}");
    // One rule for backend URLs (the router's): credentials are refused and
    // never printed, a path is refused rather than silently dropped.
    let err = cli.fails(
        &[
            "deploy",
            "--url",
            "http://u:hunter2@127.0.0.1:9",
            "--deployment-id",
            "a",
        ],
        2,
    );
    assert!(
        err.contains("user or password") && err.contains("***") && !err.contains("hunter2"),
        "{err}"
    );
    let err = cli.fails(
        &[
            "deploy",
            "--url",
            "http://127.0.0.1:9/app",
            "--deployment-id",
            "a",
        ],
        2,
    );
    assert!(err.contains("must not have a path"), "{err}");
    cli.ok(&[
        "deploy",
        "--url",
        &v1.url(),
        "--deployment-id",
        "v1",
        "--health-path",
        "/",
    ]);
    let err = cli.fails(
        &[
            "deploy",
            "--url",
            &v1.url(),
            "--deployment-id",
            "v1",
            "--health-path",
            "/",
        ],
        2,
    );
    assert!(err.contains("already exists"), "{err}");
    let err = cli.fails(&["rollback"], 1);
    assert!(err.contains("nothing to roll back to"), "{err}");
    // Ambiguous names list the matches.
    let v2 = Backend::start("v2").await;
    cli.ok(&[
        "deploy",
        "--url",
        &v2.url(),
        "--deployment-name",
        "web",
        "--health-path",
        "/",
        "--no-promote",
    ]);
    let v3 = Backend::start("v3").await;
    cli.ok(&[
        "deploy",
        "--url",
        &v3.url(),
        "--deployment-name",
        "web",
        "--health-path",
        "/",
        "--no-promote",
    ]);
    let err = cli.fails(&["remove", "--deployment-name", "web", "--yes"], 2);
    assert!(
        err.contains("2 deployments match") && err.contains("web-"),
        "{err}"
    );
    // No store configured.
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .env_clear()
        .args(["list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REDIS_URL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_down_is_exit_one() {
    let mut redis = RedisServer::start();
    let cli = Cli {
        redis_url: redis.url(),
    };
    redis.stop();
    let err = cli.fails(&["list"], 1);
    assert!(err.contains("store unavailable"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_through_the_router_checks_pinned_then_unpinned() {
    let redis = RedisServer::start();
    let (router_url, router) = support::spawn_router(&redis.url()).await;
    let v1 = Backend::start("v1").await;
    let url = v1.url();
    let r = router_url.clone();
    let out = tokio::task::spawn_blocking(move || {
        let c = Cli {
            redis_url: redis.url(),
        };
        let o = c.ok(&[
            "deploy",
            "--url",
            &url,
            "--deployment-id",
            "v1",
            "--health-path",
            "/",
            "--router-url",
            &r,
        ]);
        drop(redis);
        o
    })
    .await
    .unwrap();
    assert!(
        out.contains(&format!("router {router_url} serves v1")),
        "{out}"
    );
    router.abort();
}

#[test]
fn demo_runs_and_stops_cleanly_on_ctrl_c() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    // Read until the demo has deployed both versions.
    for line in lines.by_ref() {
        if line.unwrap().starts_with("Ctrl-C to stop") {
            break;
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = switchyard_testkit::http::raw_get(&base, None, "/hello").await;
        assert!(c.contains("\"deployment\":\"v2\""), "{c}");
        let pinned =
            switchyard_testkit::http::raw_get(&base, None, "/hello?pulse_deployment=v1").await;
        assert!(pinned.contains("\"deployment\":\"v1\""), "{pinned}");
    });
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// Given a Redis, the demo keeps to its own prefix (a real store under the
/// default prefix is never touched), clears its keys when stopped, and a
/// prefix that already holds deployments is refused with the command that
/// clears it.
#[test]
fn demo_with_a_redis_url_keeps_to_its_own_prefix_and_clears_it() {
    let redis = RedisServer::start();
    // The runtime stays alive for the backend to keep serving.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backend = rt.block_on(Backend::start("real"));
    let cli = Cli {
        redis_url: redis.url(),
    };
    // A real stack's deployment under the default prefix.
    cli.ok(&["deploy", "--url", &backend.url(), "--deployment-id", "real"]);
    let keys = |pattern: &str| -> std::collections::BTreeSet<String> {
        redis
            .command(&format!("KEYS {pattern}"))
            .lines()
            .filter(|l| !l.starts_with(['*', '$']))
            .map(str::to_string)
            .collect()
    };
    let keys_before = keys("pulse:railway:*");
    assert!(!keys_before.is_empty());

    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            &redis.url(),
        ])
        .env_clear()
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().starts_with("Ctrl-C to stop") {
            break;
        }
    }
    assert!(
        !keys("switchyard:demo:*").is_empty(),
        "the demo writes under its own prefix"
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(child.wait().unwrap().success());
    assert!(
        rest.iter().any(|l| l.starts_with("removed the demo's")),
        "{rest:?}"
    );
    assert!(
        keys("switchyard:demo:*").is_empty(),
        "the demo's keys outlived it"
    );
    assert_eq!(keys("pulse:railway:*"), keys_before);

    // A prefix with deployments in it is not the demo's to clear.
    let url = redis.url();
    let err = cli.fails(
        &[
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            &url,
            "--redis-prefix",
            "pulse:railway",
        ],
        2,
    );
    assert!(err.contains("already has deployments"), "{err}");
    assert!(
        err.contains("--scan --pattern 'pulse:railway:*' | xargs -r redis-cli"),
        "{err}"
    );
    assert_eq!(keys("pulse:railway:*"), keys_before);
    let err = cli.fails(&["demo", "--redis-prefix", "mine"], 2);
    assert!(
        err.contains("--redis-prefix applies only with --redis-url"),
        "{err}"
    );
}

/// `status --watch` redraws by itself: a promote made from another
/// terminal shows within a few intervals, a store that goes away is shown
/// and asked again, and Ctrl-C ends it with 0.
#[test]
fn status_watch_redraws_until_ctrl_c() {
    let mut redis = RedisServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (b1, b2) = rt.block_on(async { (Backend::start("w1").await, Backend::start("w2").await) });
    let cli = Cli {
        redis_url: redis.url(),
    };
    cli.ok(&["deploy", "--url", &b1.url(), "--deployment-id", "w1"]);
    cli.ok(&[
        "deploy",
        "--url",
        &b2.url(),
        "--deployment-id",
        "w2",
        "--no-promote",
    ]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["status", "--watch", "200ms", "--json"])
        .env_clear()
        .env("REDIS_URL", redis.url())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, frames) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |what: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = frames
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no frame showed {what} within 10s"));
            let frame: serde_json::Value = serde_json::from_str(&line).unwrap();
            if pred(&frame) {
                return;
            }
        }
    };
    wait_for("w1 active", &|f| f["active"] == "w1");
    cli.ok(&["promote", "w2"]);
    wait_for("the promote", &|f| f["active"] == "w2");
    redis.stop();
    wait_for("the store's failure", &|f| f["error"].is_string());
    // Back, empty (nothing was persisted): the watch reads it again.
    redis.restart();
    wait_for("the store again", &|f| f["deployments"].is_array());

    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let err = cli.fails(&["status", "--watch", "0s"], 2);
    assert!(err.contains("--watch"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_what_the_janitor_retires_next() {
    let redis = RedisServer::start();
    let cli = Cli {
        redis_url: redis.url(),
    };
    let backends = [
        Backend::start("v1").await,
        Backend::start("v2").await,
        Backend::start("v3").await,
    ];
    for (id, b) in ["v1", "v2", "v3"].iter().zip(&backends) {
        cli.ok(&[
            "deploy",
            "--url",
            &b.url(),
            "--deployment-id",
            id,
            "--health-path",
            "/",
        ]);
    }
    assert!(
        cli.ok(&["status"])
            .contains("unknown until the janitor has run once")
    );

    // As the janitor publishes it: keep at most one draining deployment.
    redis.command(r#"SET pulse:railway:meta:janitor-policy '{"idle_grace":600,"reload_after":1800,"max_drain_age":86400,"max_draining":1}'"#);
    let text = cli.ok(&["status"]);
    assert!(text.contains("next to retire: v1, on the janitor's next run (delete: oldest of 2 draining deployments; the cap is 1)"), "{text}");
    let json = cli.list();
    assert_eq!(json["next_retirement"]["deployment_id"], "v1");
    assert_eq!(json["next_retirement"]["due"], true);
    assert_eq!(json["janitor_policy"]["max_draining"], 1);

    // Without a cap, nothing is due yet: the oldest draining one is next.
    redis.command(r#"SET pulse:railway:meta:janitor-policy '{"idle_grace":600,"reload_after":1800,"max_drain_age":86400,"max_draining":null}'"#);
    let text = cli.ok(&["status"]);
    assert!(
        text.contains("next to retire: v1, the oldest draining; not yet"),
        "{text}"
    );
}

/// A password in the Redis URL is never printed, in errors or JSON.
#[test]
fn the_redis_password_never_appears_in_output() {
    let port = switchyard_testkit::free_port();
    for url in [
        format!("redis://:hunter2-secret@127.0.0.1:{port}/"),
        "redis://:hunter2-secret@".to_string(),
        "nonsense://:hunter2-secret@x".to_string(),
    ] {
        let cli = Cli { redis_url: url };
        for args in [&["status"][..], &["status", "--json"], &["promote", "v1"]] {
            let out = cli.run(args);
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!out.status.success());
            assert!(
                !all.contains("hunter2"),
                "{args:?} leaks the password:\n{all}"
            );
        }
    }
}

/// docs/settings.md's CLI table is what the declarations say.
#[test]
fn the_settings_page_is_what_the_declarations_say() {
    switchyard_core::config::settings_page("switchyard", &switchyard_cli::settings::all())
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Every setting with a flag is a flag of some subcommand, and `--help`
/// names its variables, file key and default.
#[test]
fn every_setting_is_a_flag_and_help_names_its_variables_and_file_key() {
    use switchyard_cli::settings;
    fn longs(cmd: &clap::Command, out: &mut Vec<String>) {
        out.extend(
            cmd.get_arguments()
                .filter_map(|a| a.get_long())
                .map(|l| format!("--{l}")),
        );
        for sub in cmd.get_subcommands() {
            longs(sub, out);
        }
    }
    let mut all = Vec::new();
    longs(&settings::command(), &mut all);
    for s in settings::ALL.iter().filter(|s| s.flag().starts_with("--")) {
        assert!(
            all.iter().any(|l| l == s.flag()),
            "{} is no subcommand's flag",
            s.flag()
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["deploy", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for line in [
        "[env: SWITCHYARD_HEALTH_PATH; switchyard.toml: health_path; default: /_pulse/meta]",
        "[env: REDIS_URL, PULSE_KV_URL, PULSE_RAILWAY_REDIS_URL; switchyard.toml: redis_url]",
        "[env: PULSE_RAILWAY_DEPLOYMENT_NAME; switchyard.toml: deployment_name; default: prod]",
    ] {
        assert!(help.contains(line), "{line} missing from:\n{help}");
    }
}

#[test]
fn every_flag_of_every_subcommand_has_help() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if arg
                .get_help()
                .is_none_or(|h| h.to_string().trim().is_empty())
            {
                missing.push(format!("{path} {}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(
        &switchyard_cli::settings::command(),
        "switchyard",
        &mut missing,
    );
    assert!(missing.is_empty(), "no help text: {missing:?}");
}

/// The first hour: arguments and messages as a new user meets them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_and_messages_a_new_user_meets() {
    let redis = RedisServer::start();
    let cli = Cli {
        redis_url: redis.url(),
    };
    // The id is positional for delete as for promote, and status is listed.
    // An id nobody has gets the same words from every command.
    for args in [
        &["delete", "ghost"][..],
        &["promote", "ghost"],
        &["revoke", "ghost", "--yes"],
        &["remove", "ghost", "--yes"],
    ] {
        let err = cli.fails(args, 2);
        assert!(
            err.contains("does not exist; `switchyard status` lists those that do"),
            "{args:?}: {err}"
        );
    }
    // A transposed flag gets the flag it meant.
    let err = cli.fails(&["deploy", "--ulr", "http://127.0.0.1:9"], 2);
    assert!(err.contains("a similar argument exists: '--url'"), "{err}");
    let help = String::from_utf8_lossy(&cli.run(&["--help"]).stdout).into_owned();
    assert!(help.contains("status"), "{help}");
    assert!(help.contains("Global options"), "{help}");
    // A --config file that is not there is an error, not a silent default.
    let err = cli.fails(&["--config", "/nonexistent/switchyard.toml", "status"], 2);
    assert!(err.contains("no such file"), "{err}");
    // Zero timeouts cannot be met.
    let err = cli.fails(
        &[
            "deploy",
            "--url",
            "http://127.0.0.1:9",
            "--deployment-id",
            "a",
            "--timeout",
            "0",
        ],
        2,
    );
    assert!(err.contains("--timeout must be longer than 0s"), "{err}");
    // A health path the backend does not have is said so, naming the setting.
    let v1 = Backend::start("v1").await;
    let err = cli.fails(
        &[
            "deploy",
            "--url",
            &v1.url(),
            "--deployment-id",
            "h404",
            "--health-path",
            "/status/404",
            "--timeout",
            "60s",
        ],
        1,
    );
    assert!(
        err.contains("404")
            && err.contains("the path is missing")
            && err.contains("SWITCHYARD_HEALTH_PATH"),
        "{err}"
    );
    // Revoking the active one names the flag that makes it possible, and
    // the deployment a rollback would choose.
    let v2 = Backend::start("v2").await;
    cli.ok(&[
        "deploy",
        "--url",
        &v1.url(),
        "--deployment-id",
        "r1",
        "--health-path",
        "/",
    ]);
    let out = cli.ok(&[
        "deploy",
        "--url",
        &v2.url(),
        "--deployment-id",
        "r2",
        "--health-path",
        "/",
    ]);
    assert!(
        out.contains("whether the routers serve it was not checked"),
        "{out}"
    );
    let err = cli.fails(&["revoke", "r2", "--yes"], 2);
    assert!(
        err.contains("--promote OTHER") && err.contains("--promote r1"),
        "{err}"
    );
    // Without a router, promote says which checks it skipped, and still
    // validates --timeout.
    let out = cli.run(&["promote", "r1"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("without the checks through the router"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = cli.fails(&["promote", "r2", "--timeout", "0"], 2);
    assert!(err.contains("--timeout must be longer than 0s"), "{err}");
    // A router that does not answer is blamed, not the deployment.
    let dead = format!("http://127.0.0.1:{}", switchyard_testkit::free_port());
    let err = cli.fails(
        &[
            "promote",
            "r2",
            "--router-url",
            &dead,
            "--health-path",
            "/",
            "--timeout",
            "2s",
        ],
        1,
    );
    assert!(
        err.contains(&format!("the router at {dead} never answered"))
            && !err.contains("failed its health check"),
        "{err}"
    );
    // --json errors are JSON too.
    let out = cli.run(&["promote", "ghost", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("does not exist"));
    // No colour codes when the output is not a terminal.
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\u{1b}'));
    // demo's help shows only what applies to the demo, and a global option
    // it would ignore is refused by name, before or after the subcommand.
    let help = cli.ok(&["demo", "--help"]);
    assert!(
        help.contains("--listen") && help.contains("--redis-url"),
        "{help}"
    );
    for absent in ["--platform", "--project-id", "--redis-service", "--json"] {
        assert!(!help.contains(absent), "{absent} in demo --help: {help}");
    }
    let err = cli.fails(&["demo", "--platform", "railway"], 2);
    assert!(err.contains("--platform does not apply"), "{err}");
    let err = cli.fails(&["--project-id", "p", "demo"], 2);
    assert!(err.contains("--project-id does not apply"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_path_the_router_answers_itself_is_refused() {
    let redis = RedisServer::start();
    let url = redis.url();
    tokio::task::spawn_blocking(move || {
        let c = Cli { redis_url: url };
        for path in [
            "/healthz",
            "/_switchyard/status",
            "/_pulse/internal/x",
            "/_switchyard",
        ] {
            let err = c.fails(
                &[
                    "deploy",
                    "--url",
                    "http://127.0.0.1:9",
                    "--deployment-id",
                    "v1",
                    "--health-path",
                    path,
                ],
                2,
            );
            assert!(
                err.contains("the router answers that path itself"),
                "{path}: {err}"
            );
        }
        assert_eq!(
            c.list()["deployments"],
            serde_json::json!([]),
            "nothing registered"
        );
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_backend_that_fails_every_request_is_rolled_back() {
    let redis = RedisServer::start();
    let (router_url, router) = support::spawn_router(&redis.url()).await;
    let v1 = Backend::start("v1").await;
    let v2 = Backend::start("v2").await;
    // Its health page answers; everything else is a 500.
    v2.state
        .fail_status
        .store(500, std::sync::atomic::Ordering::SeqCst);
    let (u1, u2, r) = (v1.url(), v2.url(), router_url.clone());
    let url = redis.url();
    let (out, list) = tokio::task::spawn_blocking(move || {
        let c = Cli { redis_url: url };
        let deploy = |id: &str, backend: &str| {
            vec![
                "deploy".to_string(),
                "--url".into(),
                backend.into(),
                "--deployment-id".into(),
                id.into(),
                "--health-path".into(),
                "/page".into(),
                "--router-url".into(),
                r.clone(),
            ]
        };
        let args = deploy("v1", &u1);
        c.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let args = deploy("v2", &u2);
        let err = c.fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), 1);
        (err, c.list())
    })
    .await
    .unwrap();
    assert!(out.contains("rolled back to v1"), "{out}");
    assert!(out.contains("failed at the new backend"), "{out}");
    assert_eq!(list["active"], "v1");
    assert_eq!(state(&list, "v2"), "draining");
    router.abort();
}
