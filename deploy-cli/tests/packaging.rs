//! The shipping files parse and name paths and binaries that exist.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn railway_config(rel: &str) -> serde_json::Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

/// The binary a package builds, from its manifest's [[bin]] table.
fn declares_bin(manifest: &str, bin: &str) -> bool {
    read(manifest).contains(&format!("name = \"{bin}\""))
}

#[test]
fn router_railway_config() {
    let c = railway_config("railway.json");
    assert_eq!(c["build"]["builder"], "DOCKERFILE");
    let dockerfile = c["build"]["dockerfilePath"].as_str().unwrap();
    assert!(root().join(dockerfile).is_file(), "{dockerfile} exists");
    assert_eq!(c["deploy"]["healthcheckPath"], "/healthz");
    assert_eq!(
        c["deploy"]["startCommand"],
        "/usr/local/bin/switchyard-router"
    );
    assert_eq!(c["deploy"]["restartPolicyType"], "ON_FAILURE");
    // Overlap and draining cover the router's 30 s shutdown deadline.
    assert!(c["deploy"]["drainingSeconds"].as_u64().unwrap() >= 30);
    assert!(declares_bin("router/Cargo.toml", "switchyard-router"));
}

#[test]
fn janitor_railway_config_is_a_five_minute_cron() {
    let c = railway_config("docker/janitor.railway.json");
    assert_eq!(c["deploy"]["cronSchedule"], "*/5 * * * *");
    assert_eq!(
        c["deploy"]["restartPolicyType"], "NEVER",
        "a cron job exits after each run"
    );
    let dockerfile = c["build"]["dockerfilePath"].as_str().unwrap();
    assert!(root().join(dockerfile).is_file());
    assert_eq!(
        c["deploy"]["startCommand"],
        "/usr/local/bin/switchyard-janitor"
    );
    assert!(declares_bin("janitor/Cargo.toml", "switchyard-janitor"));
}

#[test]
fn dockerfiles_are_multi_stage_non_root_and_minimal() {
    for (file, package, bin) in [
        (
            "docker/router.Dockerfile",
            "switchyard-router",
            "switchyard-router",
        ),
        (
            "docker/janitor.Dockerfile",
            "switchyard-janitor",
            "switchyard-janitor",
        ),
    ] {
        let d = read(file);
        let stages = d.lines().filter(|l| l.starts_with("FROM ")).count();
        assert!(stages >= 3, "{file}: multi-stage");
        assert!(
            d.contains("cargo chef cook"),
            "{file}: a dependency layer before the sources"
        );
        assert!(d.contains(&format!("--package {package}")), "{file}");
        assert!(
            d.contains(&format!("target/release/{bin} /usr/local/bin/{bin}")),
            "{file}: copies the binary"
        );
        assert!(d.contains("USER 1001:1001"), "{file}: runs as uid 1001");
        let runtime = d.rsplit("FROM ").next().unwrap();
        assert!(
            runtime.starts_with("gcr.io/distroless/cc-debian12"),
            "{file}: a runtime with CA certificates only"
        );
        assert_eq!(
            runtime.matches("COPY").count(),
            1,
            "{file}: only the binary goes into the runtime image"
        );
    }
    let router = read("docker/router.Dockerfile");
    assert!(router.contains("HEALTHCHECK") && router.contains("--health-check"));
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l == "target/"));
    assert!(ignore.lines().any(|l| l == ".git/"));
}

/// `init` and `upgrade` default to the images the release workflow pushes,
/// and `upgrade` wants what `railway.json` (config-as-code) sets.
#[test]
fn default_images_are_what_the_release_publishes() {
    let workflow = read(".github/workflows/release.yml");
    assert!(workflow.contains("file: docker/${{ matrix.program }}.Dockerfile"));
    assert!(
        workflow.contains(
            "tags: ghcr.io/switchyard/switchyard-${{ matrix.program }}:${{ env.VERSION }}"
        )
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        switchyard_cli::railway::images::default_image("router"),
        format!("ghcr.io/switchyard/switchyard-router:{version}")
    );
    assert_eq!(
        switchyard_cli::railway::images::default_image("janitor"),
        format!("ghcr.io/switchyard/switchyard-janitor:{version}")
    );
    let router = railway_config("railway.json");
    let wanted = switchyard_cli::railway::stack::desired(&switchyard_cli::railway::stack::Wanted {
        router_image: String::new(),
        janitor_image: String::new(),
        env_service: "pulse-env".into(),
        redis_url: None,
    });
    let spec = wanted.iter().find(|s| s.name == "pulse-router").unwrap();
    for (key, value) in &spec.settings {
        assert_eq!(&router["deploy"][key], value, "railway.json deploy.{key}");
    }
    let janitor = railway_config("docker/janitor.railway.json");
    let spec = wanted.iter().find(|s| s.name == "pulse-janitor").unwrap();
    for (key, value) in &spec.settings {
        assert_eq!(
            &janitor["deploy"][key], value,
            "janitor.railway.json deploy.{key}"
        );
    }
}
