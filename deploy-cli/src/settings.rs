//! Every setting the CLI reads, declared once: flag, variables,
//! `switchyard.toml` key, typed default, parser and help. `--help`, the
//! resolver, the settings file and docs/settings.md all read these; the
//! one other thing written per setting is which subcommands take it as a
//! flag ([`command`]).

use std::time::Duration;

use switchyard_core::config::{Bytes, Declared, Setting, common, parse_duration};

switchyard_core::settings! {
    shared;

    pub REDIS_URL: String = common::REDIS_URL
        .in_file("redis_url")
        .more("on Railway, default: the Redis service's `REDIS_PUBLIC_URL`");
    pub REDIS_PREFIX: String = common::REDIS_PREFIX.in_file("redis_prefix");
    pub PLATFORM: String = Setting::new(
        "--platform",
        &["SWITCHYARD_PLATFORM"],
        "Where backends run: static (given by URL) or railway",
    )
    .in_file("platform")
    .parsed_by(platform)
    .default(|| "static".into());
    pub PROJECT_ID: String = Setting::new("--project-id", &["RAILWAY_PROJECT_ID"], "Railway project of the stack")
        .in_file("project_id");
    pub ENVIRONMENT_ID: String = Setting::new("--environment-id", &["RAILWAY_ENVIRONMENT_ID"], "Railway environment of the stack")
        .in_file("environment_id")
        .computed("the project's production environment");
    pub REDIS_SERVICE: String = Setting::new(
        "--redis-service",
        &["SWITCHYARD_REDIS_SERVICE"],
        "Redis service whose REDIS_PUBLIC_URL is the store when no --redis-url is given",
    )
    .in_file("redis_service")
    .default(|| crate::railway::stack::REDIS.into());
    pub ROUTER_URL: String = Setting::new(
        "--router-url",
        &["SWITCHYARD_ROUTER_URL"],
        "Public router URL; checks go through it (pinned before promotion, unpinned after)",
    )
    .in_file("router_url")
    .more("an `https://` origin with no path (`http://` only for a router on loopback)")
    .parsed_by(crate::commands::public_origin);
    pub HEALTH_PATH: String = Setting::new(
        "--health-path",
        &["SWITCHYARD_HEALTH_PATH"],
        "Path that must answer 2xx before promotion (through the router, with the pin, when there is one)",
    )
    .in_file("health_path")
    .parsed_by(crate::commands::health_path)
    .default(|| switchyard_core::names::backend_paths::META.into());
    pub PIN_SECRET: switchyard_core::pin::PinKeys = Setting::with(
        "--pin-secret",
        &["SWITCHYARD_PIN_SECRET"],
        "The routers' pin secret (strict mode): preview links and the CLI's own checks are signed with it",
        |raw| switchyard_core::pin::PinKeys::new(raw.trim().as_bytes()),
    );
    pub DEPLOYMENT_NAME: String = Setting::new(
        "--deployment-name",
        &["PULSE_RAILWAY_DEPLOYMENT_NAME"],
        "Deployment name; the id becomes NAME-<6 hex>",
    )
    .in_file("deployment_name")
    .default(|| "prod".into());
    pub SERVICE_PREFIX: String = Setting::new(
        "--service-prefix",
        &["PULSE_RAILWAY_SERVICE_PREFIX"],
        "Railway: prefix of backend service names",
    )
    .in_file("service_prefix")
    .default(String::new);
    pub INTERNAL_TOKEN: String = common::INTERNAL_TOKEN.in_file("internal_token_env");
    pub IMAGE_REPOSITORY: String = Setting::new(
        "--image-repository",
        &["PULSE_RAILWAY_IMAGE_REPOSITORY"],
        "Railway: build the image here with docker buildx and push it as REPO:<deployment id>",
    )
    .in_file("image_repository")
    .parsed_by(image_repository);
    pub MAX_CONTEXT_SIZE: Bytes = Setting::new(
        "--max-context-size",
        &["SWITCHYARD_MAX_CONTEXT_SIZE"],
        "Railway: refuse to upload a build context larger than this",
    )
    .in_file("max_context_size")
    .default(|| Bytes(100 << 20));
    pub WORKSPACE_ID: String = Setting::new(
        "--workspace-id",
        &["RAILWAY_WORKSPACE_ID"],
        "Without --project-id: the workspace to create the project in",
    )
    .in_file("workspace_id");
    pub ROUTER_IMAGE: String = Setting::new("--router-image", &["SWITCHYARD_ROUTER_IMAGE"], "Container image of the router")
        .in_file("router_image")
        .computed("ghcr.io/switchyard/switchyard-router:<this version>, once released (checked; else init stops with a build recipe)");
    pub JANITOR_IMAGE: String = Setting::new("--janitor-image", &["SWITCHYARD_JANITOR_IMAGE"], "Container image of the janitor")
        .in_file("janitor_image")
        .computed("ghcr.io/switchyard/switchyard-janitor:<this version>, once released (checked; else init stops with a build recipe)");
    pub BACKEND_URL: String = Setting::new(
        "",
        &["SWITCHYARD_RAILWAY_BACKEND_URL"],
        "Railway: how the router reaches a backend's service, for other private networks",
    )
    .default(|| crate::railway::provision::DEFAULT_BACKEND_URL.into());
    pub POLL: Duration = Setting::new(
        "",
        &["SWITCHYARD_RAILWAY_POLL_INTERVAL"],
        "Railway: how often a build's status is read",
    )
    .parsed_by(positive_duration)
    .default(|| Duration::from_secs(3));
}

/// The settings that are flags of every subcommand.
const GLOBAL: &[&dyn Declared] = &[
    &REDIS_URL,
    &REDIS_PREFIX,
    &PLATFORM,
    &PROJECT_ID,
    &ENVIRONMENT_ID,
    &REDIS_SERVICE,
];
const VERIFY: &[&dyn Declared] = &[&ROUTER_URL, &HEALTH_PATH];
const IMAGES: &[&dyn Declared] = &[&ROUTER_IMAGE, &JANITOR_IMAGE];

/// The CLI's command: its subcommands' own arguments, and each setting as
/// a flag where it applies (the ones of every subcommand under "Global
/// options").
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    use switchyard_core::config::{command as with, global};
    let deploy: Vec<&dyn Declared> = [
        VERIFY,
        &[
            &DEPLOYMENT_NAME,
            &SERVICE_PREFIX,
            &INTERNAL_TOKEN,
            &IMAGE_REPOSITORY,
            &MAX_CONTEXT_SIZE,
        ],
    ]
    .concat();
    let init: Vec<&dyn Declared> = [IMAGES, &[&WORKSPACE_ID]].concat();
    global(crate::Cli::command(), GLOBAL, "Global options")
        .mut_subcommand("deploy", |c| {
            with(c, &deploy).mut_arg("image-repository", |a| {
                a.conflicts_with_all(["url", "image", "repo"])
            })
        })
        .mut_subcommand("promote", |c| with(c, VERIFY))
        .mut_subcommand("rollback", |c| with(c, VERIFY))
        .mut_subcommand("preview-url", |c| with(c, &[&ROUTER_URL, &PIN_SECRET]))
        .mut_subcommand("init", |c| with(c, &init))
        .mut_subcommand("upgrade", |c| with(c, IMAGES))
}

/// Every setting the CLI reads, its own and the Railway API's.
pub fn all() -> Vec<&'static dyn Declared> {
    [ALL, switchyard_railway::settings::ALL].concat()
}

fn platform(raw: &str) -> Result<String, String> {
    match raw.trim() {
        p @ ("static" | "railway") => Ok(p.to_string()),
        _ => Err("expected static or railway".into()),
    }
}

fn image_repository(raw: &str) -> Result<String, String> {
    let repository = raw.trim();
    let last = repository.rsplit('/').next().unwrap_or_default();
    if repository.is_empty() || last.contains(':') || last.contains('@') {
        return Err(
            "must be a repository without a tag, such as ghcr.io/acme/web; the deployment id becomes the tag"
                .into(),
        );
    }
    Ok(repository.to_string())
}

fn positive_duration(raw: &str) -> Result<Duration, String> {
    match parse_duration(raw)? {
        d if d.is_zero() => Err("must be longer than 0s".into()),
        d => Ok(d),
    }
}
