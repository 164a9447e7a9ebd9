//! `switchyard init`: bootstrap the stack into a Railway project (creating
//! the project when none is given): Redis with a volume and a TCP proxy so
//! the CLI can reach it (or an external one given with `--redis-url`), then
//! the services of [`crate::railway::stack`]: the env service holding user
//! variables, the router and the janitor.

use crate::settings::{JANITOR_IMAGE, PROJECT_ID, ROUTER_IMAGE, WORKSPACE_ID};
use std::collections::BTreeMap;

use clap::Args;
use switchyard_core::config::{EnvSource, Resolver};
use switchyard_railway::RailwayPlatform;
use switchyard_railway::{Auth, Client, ClientSettings, ops::Source};

use crate::{
    Failure, GlobalArgs, context,
    railway::{
        images,
        stack::{self, ENV, JANITOR, REDIS, ROUTER},
    },
    usage,
};

/// What the stack runs; shared by `init` and `upgrade` (whose
/// `--router-image` and `--janitor-image` are settings: `settings.rs`).
#[derive(Debug, Args)]
pub struct StackArgs {
    /// Service holding your app's variables, referenced by every backend [default: pulse-env]
    #[arg(long)]
    pub env_service: Option<String>,
}

impl StackArgs {
    /// What the stack should run. An image not given anywhere defaults to
    /// this version's published one, checked to exist first (see
    /// [`images`]).
    pub async fn wanted(
        &self,
        env: &dyn EnvSource,
        redis_url: Option<String>,
    ) -> Result<stack::Wanted, Failure> {
        let r = Resolver::new(env);
        let router = r.optional(&ROUTER_IMAGE).map_err(usage)?;
        let janitor = r.optional(&JANITOR_IMAGE).map_err(usage)?;
        let defaulted: Vec<&str> = [("router", &router), ("janitor", &janitor)]
            .into_iter()
            .filter(|(_, given)| given.is_none())
            .map(|(program, _)| program)
            .collect();
        images::check_defaults(&defaulted).await?;
        Ok(stack::Wanted {
            router_image: router.unwrap_or_else(|| images::default_image("router")),
            janitor_image: janitor.unwrap_or_else(|| images::default_image("janitor")),
            env_service: self.env_service.clone().unwrap_or_else(|| ENV.into()),
            redis_url,
        })
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Redis image for the pulse-redis service [default: redis:7-alpine]
    #[arg(long)]
    pub redis_image: Option<String>,
    /// Without --project-id: the name of the project to create [default: switchyard]
    #[arg(long)]
    pub project_name: Option<String>,
}

pub async fn run(global: &GlobalArgs, env: &dyn EnvSource, args: InitArgs) -> Result<(), Failure> {
    let say = |line: &str| {
        if global.json {
            eprintln!("{line}")
        } else {
            println!("{line}")
        }
    };
    // The global --redis-url (flag only: a REDIS_URL left in a shell must
    // not silently replace the Redis service) names an external Redis.
    let external_redis = env.flag(crate::settings::REDIS_URL.flag);
    let redis_url = match &external_redis {
        Some(url) => url.clone(),
        None => stack::reference(REDIS, "REDIS_URL"),
    };
    // Before anything is created: the images must exist.
    let wanted = args.stack.wanted(env, Some(redis_url)).await?;
    say(&format!(
        "images: router {}, janitor {}",
        wanted.router_image, wanted.janitor_image
    ));
    let has_project = Resolver::new(env).raw(&PROJECT_ID).is_some();
    let (rp, project_created) = if has_project {
        (context::railway_platform(env).await?, false)
    } else {
        (create_project(env, &args, &say).await?, true)
    };
    let client = rp.client();
    let project = client.project(rp.project_id()).await?;
    let env_service = wanted.env_service.clone();
    let existing: Vec<&str> = [ROUTER, REDIS, JANITOR, env_service.as_str()]
        .into_iter()
        .filter(|n| project.service(n).is_some())
        .collect();
    if !existing.is_empty() {
        return Err(usage(format!(
            "project {} already has {}; init only builds a stack from scratch (bring an existing stack up to date with `switchyard upgrade`)",
            project.name,
            existing.join(", ")
        )));
    }

    let mut applied = stack::Applied::default();
    let result = async {
        if external_redis.is_none() {
            create_redis(&rp, args.redis_image.as_deref(), &mut applied.created, &say).await?;
        }
        let specs = stack::desired(&wanted);
        let plan = stack::plan(&specs, &BTreeMap::new());
        stack::apply(&rp, &plan, &mut applied, &say).await?;
        Ok::<_, Failure>(())
    }
    .await;
    if let Err(e) = result {
        return Err(anyhow::anyhow!(
            "{:#}. Created so far: {}. Delete those services in Railway before running init again.",
            e.error,
            if applied.created.is_empty() {
                "nothing".into()
            } else {
                applied.created.join(", ")
            }
        )
        .into());
    }
    let domain = applied.router_domain.clone().unwrap_or_default();
    if global.json {
        let summary = serde_json::json!({
            "project_id": rp.project_id(),
            "project_created": project_created,
            "environment_id": rp.environment_id(),
            "services": applied.created,
            "router_domain": domain,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    } else {
        println!(
            "stack ready in project {}: {}",
            project.name,
            applied.created.join(", ")
        );
        println!("router: https://{domain}");
        if project_created {
            println!(
                "project id: {} (set RAILWAY_PROJECT_ID or project_id in switchyard.toml)",
                rp.project_id()
            );
        }
        println!("next: put your app's variables on the {env_service} service, then");
        println!(
            "  switchyard --platform railway deploy --context . --router-url https://{domain}"
        );
    }
    Ok(())
}

/// Creates the project init builds into. Needs an account or workspace
/// token: a project token belongs to a project that already exists.
async fn create_project(
    env: &dyn EnvSource,
    args: &InitArgs,
    say: &dyn Fn(&str),
) -> Result<RailwayPlatform, Failure> {
    let r = Resolver::new(env);
    let workspace: String = r
        .required(
            &WORKSPACE_ID,
            "pass --project-id to build into an existing project, or --workspace-id (RAILWAY_WORKSPACE_ID) to create one",
        )
        .map_err(usage)?;
    let settings = ClientSettings::from_env_or_login(env).ok_or_else(|| {
        usage("creating a project needs RAILWAY_API_TOKEN (an account or workspace token) or a login of the Railway CLI (`railway login`)")
    })?;
    if matches!(settings.auth, Auth::Project(_)) {
        return Err(usage(
            "creating a project needs RAILWAY_API_TOKEN (an account or workspace token); RAILWAY_TOKEN is a project token and cannot create projects",
        ));
    }
    let client = Client::new(settings)?;
    let name = args
        .project_name
        .clone()
        .unwrap_or_else(|| "switchyard".into());
    let project = client.project_create(&name, &workspace).await?;
    // The flag only: a RAILWAY_ENVIRONMENT_ID in the shell belongs to some
    // other project.
    let environment = match env.flag(crate::settings::ENVIRONMENT_ID.flag) {
        Some(id) => id,
        None => project
            .environments
            .iter()
            .find(|e| e.name == "production")
            .or(project.environments.first())
            .map(|e| e.id.clone())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "Railway created project {} ({}) without an environment",
                    project.name,
                    project.id
                )
            })?,
    };
    say(&format!(
        "created Railway project {} ({}) in workspace {workspace}",
        project.name, project.id
    ));
    Ok(RailwayPlatform::new(client, project.id, environment))
}

/// Redis with its data on a volume, a password, and a TCP proxy: the
/// private URL is for the stack, the public one for the CLI.
async fn create_redis(
    rp: &RailwayPlatform,
    image: Option<&str>,
    created: &mut Vec<String>,
    say: &dyn Fn(&str),
) -> Result<(), Failure> {
    let client = rp.client();
    let (project, env) = (rp.project_id(), rp.environment_id());
    let image = image.unwrap_or("redis:7-alpine").to_string();
    let redis = client
        .service_create(project, env, REDIS, Some(&Source::Image(image)), None)
        .await?;
    created.push(REDIS.into());
    client
        .volume_create(project, env, &redis.id, "/data")
        .await?;
    let public = client.tcp_proxy_create(env, &redis.id, 6379).await?;
    let vars: BTreeMap<String, String> = [
        ("REDIS_PASSWORD".to_string(), stack::secret()),
        (
            "REDIS_URL".to_string(),
            "redis://default:${{REDIS_PASSWORD}}@${{RAILWAY_PRIVATE_DOMAIN}}:6379".to_string(),
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
    Ok(())
}
