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
