//! The real `switchyard-janitor` binary: output formats and exit codes.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use switchyard_testkit::RedisServer;

fn janitor() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchyard-janitor"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

#[test]
fn json_report_and_exit_zero() {
    let redis = RedisServer::start();
    let out = janitor()
        .args(["--redis-url", &redis.url(), "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["lock_acquired"], true);
    assert_eq!(report["scanned"], 0);
    assert_eq!(report["platform"], "static");
}

#[test]
fn unreachable_store_exits_one_with_a_message() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    redis.stop();
    let out = janitor().args(["--redis-url", &url]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read the store"), "{err}");
}

#[test]
fn bad_config_exits_two_naming_the_setting() {
    let out = janitor().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REDIS_URL"));
    let out = janitor()
        .args(["--redis-url", "redis://x", "--max-drain-age", "forever"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-drain-age"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_railway_it_reads_its_settings_from_railways_variables() {
    let fake = switchyard_testkit::FakeRailway::start().await;
    let (project, env) = {
        let st = fake.state();
        (st.project_id.clone(), st.environment_id.clone())
    };
    let redis = RedisServer::start();
    let base = |c: &mut Command| {
        c.env("REDIS_URL", redis.url())
            .env("RAILWAY_PROJECT_ID", &project)
            .env("RAILWAY_ENVIRONMENT_ID", &env)
            .env("SWITCHYARD_RAILWAY_API", fake.api());
    };
    let mut no_token = janitor();
    base(&mut no_token);
    let out = tokio::task::spawn_blocking(move || no_token.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RAILWAY_TOKEN"));

    let mut with_token = janitor();
    base(&mut with_token);
    with_token
        .env("RAILWAY_TOKEN", "project-token")
        .arg("--json");
    let out = tokio::task::spawn_blocking(move || with_token.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["platform"], "railway");
}

/// No password reaches the output, in text or JSON logs, whether the run
/// works or fails, even at debug level.
#[test]
fn the_redis_password_never_appears_in_output() {
    let redis = RedisServer::start();
    redis.command("CONFIG SET requirepass hunter2-secret");
    let good = format!("redis://:hunter2-secret@127.0.0.1:{}/", redis.port());
    let bad = format!("redis://:wrong-hunter2-secret@127.0.0.1:{}/", redis.port());
    for (url, format) in [
        (&good, "text"),
        (&good, "json"),
        (&bad, "text"),
        (&bad, "json"),
    ] {
        let out = janitor()
            .env("RUST_LOG", "debug")
            .env("SWITCHYARD_LOG_FORMAT", format)
            .env("REDIS_URL", url)
            .env("PULSE_RAILWAY_INTERNAL_TOKEN", "internal-hunter2-secret")
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !all.contains("hunter2"),
            "{format} output leaks a secret:\n{all}"
        );
        if url == &good {
            assert!(out.status.success(), "{all}");
        }
    }
}

#[test]
fn help_gives_every_flag_its_variables_and_default() {
    let out = janitor().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for line in [
        "[env: SWITCHYARD_IDLE_GRACE; default: 10m]",
        "[env: SWITCHYARD_MAX_DRAIN_AGE, PULSE_RAILWAY_DRAIN_TTL_SECONDS; default: 24h]",
        "[env: PULSE_RAILWAY_INTERNAL_TOKEN]",
    ] {
        assert!(help.contains(line), "{line} missing from:\n{help}");
    }
}
