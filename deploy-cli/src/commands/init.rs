//! `switchyard init`: bootstrap the stack into a Railway project: Redis
//! (with a volume and a TCP proxy so the CLI can reach it; or an external
//! one given with `--redis-url`), the env service
//! holding user variables, the router (health check, overlap, domain) and
//! the janitor (cron every 5 minutes, with a project token of its own).

use std::collections::BTreeMap;

use clap::Args;
use switchyard_core::config::EnvSource;
use switchyard_platform::RailwayPlatform;
use switchyard_railway::{Client, ops::Source};

use crate::{Failure, GlobalArgs, usage};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Container image of the router (build it with docker/router.Dockerfile)
    #[arg(long)]
    pub router_image: String,
    /// Container image of the janitor (build it with docker/janitor.Dockerfile)
    #[arg(long)]
    pub janitor_image: String,
    /// Redis image for the pulse-redis service [default: redis:7-alpine]
    #[arg(long)]
    pub redis_image: Option<String>,
}

pub const ROUTER: &str = "pulse-router";
pub const REDIS: &str = "pulse-redis";
pub const JANITOR: &str = "pulse-janitor";
pub const ENV: &str = "pulse-env";
/// The router's shutdown deadline (30 s) plus a margin: Railway keeps the
/// old replica this long so in-flight requests finish.
pub const OVERLAP_SECONDS: u32 = 35;

fn secret() -> String {
    use rand::Rng;
    let bits: u128 = rand::rng().random();
    format!("{bits:032x}")
}

fn reference(service: &str, var: &str) -> String {
    format!("${{{{{service}.{var}}}}}")
}

pub async fn run(global: &GlobalArgs, env: &dyn EnvSource, args: InitArgs) -> Result<(), Failure> {
    let rp = crate::context::railway_platform(global, env).await?;
    let client = rp.client();
    let project = client.project(rp.project_id()).await?;
    let mine = [ROUTER, REDIS, JANITOR, ENV];
    let existing: Vec<&str> = mine
        .iter()
        .copied()
        .filter(|n| project.service(n).is_some())
        .collect();
    if !existing.is_empty() {
        return Err(usage(format!(
            "project {} already has {}; init only builds a stack from scratch (delete those services, or use another project)",
            project.name,
            existing.join(", ")
        )));
    }
    let mut created: Vec<String> = Vec::new();
    // The global --redis-url (flag only: a REDIS_URL left in a shell must
    // not silently replace the Redis service) names an external Redis.
    let result = build(
        &rp,
        &args,
        global.redis_url.as_deref(),
        &mut created,
        global.json,
    )
    .await;
    match result {
        Ok(summary) => {
            if global.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&summary).unwrap_or_default()
                );
            } else {
                let domain = summary["router_domain"].as_str().unwrap_or_default();
                println!(
                    "stack ready in project {}: {}",
                    project.name,
                    created.join(", ")
                );
                println!("router: https://{domain}");
                println!("next: put your app's variables on the {ENV} service, then");
                println!(
                    "  switchyard --platform railway deploy --image YOUR_IMAGE --router-url https://{domain}"
                );
            }
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!(
            "{:#}. Created so far: {}. Delete those services in Railway before running init again.",
            e.error,
            if created.is_empty() {
                "nothing".into()
            } else {
                created.join(", ")
            }
        )
        .into()),
    }
}

async fn build(
    rp: &RailwayPlatform,
    args: &InitArgs,
    external_redis: Option<&str>,
    created: &mut Vec<String>,
    quiet: bool,
) -> Result<serde_json::Value, Failure> {
    let client: &Client = rp.client();
    let (project, env) = (rp.project_id(), rp.environment_id());
    let say = |line: &str| {
        if quiet {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
    };

    // Redis: private URL for the stack, public (TCP proxy) URL for the CLI.
    let redis_url = match external_redis {
        Some(url) => url.to_string(),
        None => {
            let image = args
                .redis_image
                .clone()
                .unwrap_or_else(|| "redis:7-alpine".into());
            let redis = client
                .service_create(project, env, REDIS, Some(&Source::Image(image)), None)
                .await?;
            created.push(REDIS.into());
            client
                .volume_create(project, env, &redis.id, "/data")
                .await?;
            let public = client.tcp_proxy_create(env, &redis.id, 6379).await?;
            let vars: BTreeMap<String, String> = [
                ("REDIS_PASSWORD".to_string(), secret()),
                (
                    "REDIS_URL".to_string(),
                    "redis://default:${{REDIS_PASSWORD}}@${{RAILWAY_PRIVATE_DOMAIN}}:6379"
                        .to_string(),
                ),
                (
                    "REDIS_PUBLIC_URL".to_string(),
                    format!("redis://default:${{{{REDIS_PASSWORD}}}}@{public}"),
                ),
            ]
            .into();
            client
                .upsert_variables(project, env, Some(&redis.id), &vars, true)
                .await?;
            let start = r#"/bin/sh -c "exec redis-server --requirepass \"$REDIS_PASSWORD\" --appendonly yes --dir /data""#;
            client
                .service_instance_update(
                    &redis.id,
                    env,
                    &serde_json::json!({ "startCommand": start, "restartPolicyType": "ALWAYS" }),
                )
                .await?;
            client.deploy(&redis.id, env).await?;
            say(&format!(
                "created {REDIS} (volume at /data, public proxy {public})"
            ));
            reference(REDIS, "REDIS_URL")
        }
    };

    // The env service: user variables, plus the internal token shared by
    // backends (which reference every variable here) and the janitor.
    let envsvc = client.service_create(project, env, ENV, None, None).await?;
    created.push(ENV.into());
    let token_vars: BTreeMap<String, String> =
        [("PULSE_RAILWAY_INTERNAL_TOKEN".to_string(), secret())].into();
    client
        .upsert_variables(project, env, Some(&envsvc.id), &token_vars, true)
        .await?;
    say(&format!("created {ENV} (holds your app's variables)"));

    let router = client
        .service_create(
            project,
            env,
            ROUTER,
            Some(&Source::Image(args.router_image.clone())),
            None,
        )
        .await?;
    created.push(ROUTER.into());
    let router_vars: BTreeMap<String, String> = [
        ("REDIS_URL".to_string(), redis_url.clone()),
        ("PORT".to_string(), "8000".to_string()),
        ("SWITCHYARD_LOG_FORMAT".to_string(), "json".to_string()),
    ]
    .into();
    client
        .upsert_variables(project, env, Some(&router.id), &router_vars, true)
        .await?;
    client
        .service_instance_update(
            &router.id,
            env,
            &serde_json::json!({
                "healthcheckPath": "/healthz",
                "healthcheckTimeout": 30,
                "restartPolicyType": "ON_FAILURE",
                "restartPolicyMaxRetries": 10,
                "overlapSeconds": OVERLAP_SECONDS,
                "drainingSeconds": OVERLAP_SECONDS,
            }),
        )
        .await?;
    let domain = client.service_domain_create(&router.id, env, 8000).await?;
    client.deploy(&router.id, env).await?;
    say(&format!("created {ROUTER} at https://{domain}"));

    let janitor = client
        .service_create(
            project,
            env,
            JANITOR,
            Some(&Source::Image(args.janitor_image.clone())),
            None,
        )
        .await?;
    created.push(JANITOR.into());
    let janitor_token = client
        .project_token_create(project, env, "switchyard-janitor")
        .await?;
    let janitor_vars: BTreeMap<String, String> = [
        ("REDIS_URL".to_string(), redis_url),
        ("RAILWAY_TOKEN".to_string(), janitor_token),
        (
            "PULSE_RAILWAY_INTERNAL_TOKEN".to_string(),
            reference(ENV, "PULSE_RAILWAY_INTERNAL_TOKEN"),
        ),
        ("SWITCHYARD_LOG_FORMAT".to_string(), "json".to_string()),
    ]
    .into();
    client
        .upsert_variables(project, env, Some(&janitor.id), &janitor_vars, true)
        .await?;
    client
        .service_instance_update(
            &janitor.id,
            env,
            &serde_json::json!({ "cronSchedule": "*/5 * * * *", "restartPolicyType": "NEVER" }),
        )
        .await?;
    client.deploy(&janitor.id, env).await?;
    say(&format!("created {JANITOR} (cron */5 * * * *)"));

    Ok(
        serde_json::json!({ "project_id": project, "environment_id": env, "services": created, "router_domain": domain }),
    )
}
