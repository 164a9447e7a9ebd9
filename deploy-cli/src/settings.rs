//! Every setting the CLI reads: its flag, variables, `switchyard.toml` key
//! and default. `--help`, the resolver and the settings file all read this
//! table, so a name is written once.

use switchyard_core::config::{Setting, common};

pub const REDIS_URL: Setting = common::REDIS_URL.in_file("redis_url");
pub const REDIS_PREFIX: Setting = common::REDIS_PREFIX.in_file("redis_prefix");
pub const PLATFORM: Setting = Setting::new("--platform", &["SWITCHYARD_PLATFORM"])
    .in_file("platform")
    .defaults_to("static");
pub const PROJECT_ID: Setting =
    Setting::new("--project-id", &["RAILWAY_PROJECT_ID"]).in_file("project_id");
pub const ENVIRONMENT_ID: Setting = Setting::new("--environment-id", &["RAILWAY_ENVIRONMENT_ID"])
    .in_file("environment_id")
    .defaults_to("the project's production environment");
pub const REDIS_SERVICE: Setting = Setting::new("--redis-service", &["SWITCHYARD_REDIS_SERVICE"])
    .in_file("redis_service")
    .defaults_to(crate::railway::stack::REDIS);
pub const ROUTER_URL: Setting =
    Setting::new("--router-url", &["SWITCHYARD_ROUTER_URL"]).in_file("router_url");
pub const HEALTH_PATH: Setting = Setting::new("--health-path", &["SWITCHYARD_HEALTH_PATH"])
    .in_file("health_path")
    .defaults_to(switchyard_core::names::backend_paths::META);
pub const PIN_SECRET: Setting = Setting::new("--pin-secret", &["SWITCHYARD_PIN_SECRET"]);
pub const DEPLOYMENT_NAME: Setting =
    Setting::new("--deployment-name", &["PULSE_RAILWAY_DEPLOYMENT_NAME"])
        .in_file("deployment_name")
        .defaults_to("prod");
pub const SERVICE_PREFIX: Setting =
    Setting::new("--service-prefix", &["PULSE_RAILWAY_SERVICE_PREFIX"])
        .in_file("service_prefix")
        .defaults_to("none");
pub const INTERNAL_TOKEN: Setting = common::INTERNAL_TOKEN.in_file("internal_token_env");
pub const IMAGE_REPOSITORY: Setting =
    Setting::new("--image-repository", &["PULSE_RAILWAY_IMAGE_REPOSITORY"])
        .in_file("image_repository");
pub const MAX_CONTEXT_SIZE: Setting =
    Setting::new("--max-context-size", &["SWITCHYARD_MAX_CONTEXT_SIZE"])
        .in_file("max_context_size")
        .defaults_to("100MiB");
pub const WORKSPACE_ID: Setting =
    Setting::new("--workspace-id", &["RAILWAY_WORKSPACE_ID"]).in_file("workspace_id");
pub const ROUTER_IMAGE: Setting = Setting::new("--router-image", &["SWITCHYARD_ROUTER_IMAGE"])
    .in_file("router_image")
    .defaults_to("ghcr.io/switchyard/switchyard-router:<this version>, once released (checked; else init stops with a build recipe)");
pub const JANITOR_IMAGE: Setting = Setting::new("--janitor-image", &["SWITCHYARD_JANITOR_IMAGE"])
    .in_file("janitor_image")
    .defaults_to("ghcr.io/switchyard/switchyard-janitor:<this version>, once released (checked; else init stops with a build recipe)");

/// Variables with no flag: for other private networks and slow APIs.
pub const BACKEND_URL: Setting = Setting::new(
    "(backend url template)",
    &["SWITCHYARD_RAILWAY_BACKEND_URL"],
);
pub const POLL: Setting = Setting::new("(poll interval)", &["SWITCHYARD_RAILWAY_POLL_INTERVAL"]);

pub const ALL: &[Setting] = &[
    REDIS_URL,
    REDIS_PREFIX,
    PLATFORM,
    PROJECT_ID,
    ENVIRONMENT_ID,
    REDIS_SERVICE,
    ROUTER_URL,
    HEALTH_PATH,
    PIN_SECRET,
    DEPLOYMENT_NAME,
    SERVICE_PREFIX,
    INTERNAL_TOKEN,
    IMAGE_REPOSITORY,
    MAX_CONTEXT_SIZE,
    WORKSPACE_ID,
    ROUTER_IMAGE,
    JANITOR_IMAGE,
    BACKEND_URL,
    POLL,
];
