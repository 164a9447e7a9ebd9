//! `switchyard deploy`: make the backend exist (a URL on the static
//! platform; a new service on Railway), register it pending, check its
//! health, promote it, and wait until the router serves it.
//!
//! On Railway the code comes from one of four places: an uploaded build
//! context Railway builds (the default), an image built and pushed from
//! here (`--image-repository`), a prebuilt image (`--image`) or a GitHub
//! repository (`--repo`). Everything that can fail locally (packing, the
//! size limit, the docker build) happens before anything is created.

use crate::settings::{
    BACKEND_URL, DEPLOYMENT_NAME as NAME, IMAGE_REPOSITORY, INTERNAL_TOKEN, MAX_CONTEXT_SIZE, POLL,
    SERVICE_PREFIX,
};
// The settings among deploy's flags (--deployment-name, --image-repository,
// --max-context-size, --service-prefix, --internal-token, --router-url,
// --health-path) are declared in `settings.rs`.
use std::{path::PathBuf, time::Duration};
use switchyard_core::names::DEFAULT_QUERY_PARAM;
use switchyard_store::JournalKind;

use clap::Args;
use switchyard_core::{
    DeploymentId, UnixTime,
    config::{EnvSource, Resolver},
};
use switchyard_store::{NewDeployment, StoreError};

use super::{
    parse_id,
    promote::{Checks, Verify},
};
use crate::{
    Context, Failure,
    checks::{wait_healthy, wait_until_serving},
    progress::Progress,
    railway::provision::{self, Code, RailwaySpec},
    source::{image, pack},
    usage,
};

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Backend base URL on the static platform, e.g. http://10.0.0.5:8000
    #[arg(long)]
    pub url: Option<String>,
    /// Railway: deploy this container image
    #[arg(long, conflicts_with_all = ["url", "repo"])]
    pub image: Option<String>,
    /// Railway: build this GitHub repository (owner/name)
    #[arg(long, conflicts_with = "url")]
    pub repo: Option<String>,
    /// Railway: the branch of --repo to build
    #[arg(long, requires = "repo")]
    pub branch: Option<String>,
    /// Railway: the build context to upload (Railway builds it), or to build with --image-repository [default: .]
    #[arg(long, conflicts_with_all = ["url", "image", "repo"])]
    pub context: Option<PathBuf>,
    /// Railway: the Dockerfile, inside the context [default: Railway's detection / CONTEXT/Dockerfile]
    #[arg(long, conflicts_with_all = ["url", "image", "repo"])]
    pub dockerfile: Option<PathBuf>,
    /// Pack files that .gitignore excludes (.railwayignore and .dockerignore still apply)
    #[arg(long)]
    pub no_gitignore: bool,
    /// Also pack .git, target, node_modules and .env* files
    #[arg(long)]
    pub no_default_excludes: bool,
    /// Use exactly this deployment id instead of generating one
    #[arg(long)]
    pub deployment_id: Option<String>,
    /// Leave it pending: a preview reachable only with a pin
    #[arg(long)]
    pub no_promote: bool,
    /// The shared-state generation this build works with (schema, session format); promotion never moves unpinned traffic to a lower one without --force [default: 0]
    #[arg(long, value_name = "N")]
    pub state_epoch: Option<u64>,
    #[command(flatten)]
    pub verify: Verify,
    /// Railway: port the backend listens on (PORT is set to it) [default: 8000]
    #[arg(long)]
    pub port: Option<u16>,
    /// Railway: service holding user variables every backend references [default: pulse-env]
    #[arg(long)]
    pub env_service: Option<String>,
    /// Railway: how long the build and deploy may take [default: 15m]
    #[arg(long)]
    pub build_timeout: Option<String>,
}

pub fn new_id(name: &str) -> Result<DeploymentId, Failure> {
    use rand::Rng;
    let suffix: u32 = rand::rng().random_range(0..0x100_0000);
    DeploymentId::new(&format!("{name}-{suffix:06x}"))
        .map_err(|e| usage(format!("deployment name {name:?} cannot form an id: {e}")))
}

fn duration(flag: &str, raw: Option<&str>, default: Duration) -> Result<Duration, Failure> {
    super::timeout(flag, raw, default)
}

pub async fn run(ctx: &Context, env: &dyn EnvSource, args: DeployArgs) -> Result<(), Failure> {
    let r = Resolver::new(env);
    let id = match &args.deployment_id {
        Some(raw) => parse_id(raw)?,
        None => new_id(&r.get(&NAME).map_err(usage)?)?,
    };
    let Checks {
        router,
        health_path,
        timeout,
    } = args.verify.resolve(env)?;
    let before = super::snapshot(ctx).await?;
    if router.is_some() || args.no_promote {
        crate::checks::strict_needs_secret(&ctx.store, env).await?;
    }
    if before.deployments.contains_key(&id) {
        return Err(usage(StoreError::AlreadyExists(id)));
    }
    let progress = |line: &str| step(ctx, line);

    let backend = match &ctx.railway {
        None => static_backend(&args, env, &id)?,
        Some(rp) => {
            if router.is_none() {
                return Err(usage(
                    "on Railway the health check goes through the router: pass --router-url or set SWITCHYARD_ROUTER_URL",
                ));
            }
            let spec = railway_spec(ctx, &r, &args, &id).await?;
            provision::railway(rp, &id, &spec, &progress).await?
        }
    };
    register(ctx, &args, &id, &backend).await?;
    progress(&format!("registered {id} (pending) -> {}", backend.url));

    // Health: through the router with the pin when we know it, else direct.
    let check_url = match &router {
        Some(r) => format!(
            "{}{health_path}?{DEFAULT_QUERY_PARAM}={}",
            r.trim_end_matches('/'),
            crate::checks::check_pin(env, &id)
        ),
        None => format!("{}{health_path}", backend.url.trim_end_matches('/')),
    };
    if let Err(unhealthy) = wait_healthy(&check_url, timeout).await {
        undo(ctx, &id, &backend).await;
        let serving = before
            .active
            .as_ref()
            .map_or("nothing".to_string(), |a| a.to_string());
        let fix = match &router {
            Some(_) if unhealthy.never_answered => "Start the router (or fix --router-url)",
            _ => "Fix the backend (or pass --health-path)",
        };
        return Err(anyhow::anyhow!(
            "{}. It was removed; {serving} keeps serving. {fix} and run deploy again.",
            unhealthy.explain(&id, &check_url, router.as_deref())
        )
        .into());
    }
    progress(&format!("health check passed: {check_url}"));

    let previous = if args.no_promote {
        // The link a strict router accepts: signed, like `preview-url`'s.
        let link = format!(
            "{}/?{DEFAULT_QUERY_PARAM}={}",
            router.as_deref().unwrap_or("").trim_end_matches('/'),
            crate::checks::check_pin(env, &id)
        );
        progress(&format!(
            "left pending: open it at {link}; promote with `switchyard promote {id}`"
        ));
        None
    } else {
        promote(ctx, &id, router.as_deref(), timeout).await?
    };
    if ctx.json {
        ctx.say(String::new, || {
            serde_json::json!({
                "deployment_id": id,
                "backend_url": backend.url,
                "service_name": backend.service_name,
                "service_id": backend.service_id,
                "state": if args.no_promote { "pending" } else { "active" },
                "previous": previous,
            })
        });
    }
    Ok(())
}

/// The static platform: the backend is already running at `--url`.
fn static_backend(
    args: &DeployArgs,
    flags: &dyn EnvSource,
    id: &DeploymentId,
) -> Result<provision::Backend, Failure> {
    if args.context.is_some()
        || args.dockerfile.is_some()
        || flags.flag(IMAGE_REPOSITORY.flag).is_some()
    {
        return Err(usage(
            "--context, --dockerfile and --image-repository build on Railway: pass --platform railway (the static platform takes --url)",
        ));
    }
    let Some(url) = args.url.clone() else {
        return Err(usage(
            "the static platform needs --url, the backend's base URL (for example http://10.0.0.5:8000); on Railway pass --platform railway (source, --image-repository, --image or --repo)",
        ));
    };
    let url = switchyard_core::BackendUrl::parse(&url).map_err(|e| usage(format!("--url: {e}")))?;
    Ok(provision::Backend {
        url: url.to_string(),
        service_name: id.to_string(),
        service_id: None,
    })
}

/// Everything Railway provisioning needs, the code included (built and
/// pushed, or packed, here).
async fn railway_spec(
    ctx: &Context,
    r: &Resolver<'_>,
    args: &DeployArgs,
    id: &DeploymentId,
) -> Result<RailwaySpec, Failure> {
    Ok(RailwaySpec {
        code: code(ctx, r, args, id).await?,
        port: args.port.unwrap_or(8000),
        service_prefix: r.get(&SERVICE_PREFIX).map_err(usage)?,
        env_service: args
            .env_service
            .clone()
            .unwrap_or_else(|| crate::railway::stack::ENV.into()),
        redis_service: ctx.redis_service.clone(),
        internal_token: r.optional(&INTERNAL_TOKEN).map_err(usage)?,
        backend_url_template: r.get(&BACKEND_URL).map_err(usage)?,
        build_timeout: duration(
            "--build-timeout",
            args.build_timeout.as_deref(),
            Duration::from_secs(900),
        )?,
        poll_interval: r.get(&POLL).map_err(usage)?,
    })
}

/// Records the new deployment as pending; a refusal removes what was
/// provisioned for it.
async fn register(
    ctx: &Context,
    args: &DeployArgs,
    id: &DeploymentId,
    backend: &provision::Backend,
) -> Result<(), Failure> {
    // Railway's URLs come from a template: held to the router's rule
    // before they are recorded, not discovered by a router later.
    if let Err(e) = switchyard_core::BackendUrl::parse(&backend.url) {
        undo(ctx, id, backend).await;
        return Err(usage(e));
    }
    let new = NewDeployment {
        id: id.clone(),
        service_name: backend.service_name.clone(),
        backend_url: backend.url.clone(),
        service_id: backend.service_id.clone(),
        state_epoch: args.state_epoch,
        now: UnixTime::now(),
    };
    match ctx.store.register(new).await {
        Ok(()) => {
            ctx.journal(
                JournalKind::Registered,
                id,
                format!("service {}", backend.service_name),
            )
            .await;
            Ok(())
        }
        Err(e) => {
            undo(ctx, id, backend).await;
            Err(match e {
                StoreError::AlreadyExists(_) | StoreError::ServiceTaken { .. } => usage(e),
                e => e.into(),
            })
        }
    }
}

/// Promotes, then waits until the router serves the new deployment to
/// unpinned requests; returns the one now draining.
async fn promote(
    ctx: &Context,
    id: &DeploymentId,
    router: Option<&str>,
    timeout: Duration,
) -> Result<Option<DeploymentId>, Failure> {
    let previous = ctx.store.promote(id, UnixTime::now()).await?.previous;
    let from = previous
        .as_ref()
        .map_or(String::new(), |p| format!("{p} drains"));
    ctx.journal(JournalKind::Promoted, id, from).await;
    step(
        ctx,
        &format!(
            "promoted {id}{}",
            previous
                .as_ref()
                .map_or(String::new(), |p| format!("; {p} is draining"))
        ),
    );
    let Some(r) = router else {
        step(
            ctx,
            "no --router-url (SWITCHYARD_ROUTER_URL): the health check went to the backend directly, \
             and whether the routers serve it was not checked",
        );
        return Ok(previous);
    };
    match wait_until_serving(r, id, timeout).await {
        Ok(()) => step(ctx, &format!("router {r} serves {id}")),
        Err(failing @ crate::checks::NotServing::Failing { .. }) => {
            // The new backend fails every request routed to it: put
            // the previous one back rather than leave users on it.
            let Some(back) = &previous else {
                return Err(anyhow::anyhow!(
                    "{id} is promoted but {failing}; there is no previous deployment to roll back to"
                )
                .into());
            };
            ctx.store.promote(back, UnixTime::now()).await?;
            ctx.journal(JournalKind::RolledBack, back, format!("{id} {failing}"))
                .await;
            return Err(anyhow::anyhow!(
                "{id} was promoted, then {failing}: rolled back to {back}, which serves again ({id} is draining; \
                 `switchyard revoke {id} --yes` ends it, or fix its backend and `switchyard promote {id}`)"
            )
            .into());
        }
        Err(other) => return Err(other.into()),
    }
    Ok(previous)
}

/// Decides where the new service's code comes from and does the local
/// part: building and pushing an image, or packing the context.
async fn code(
    ctx: &Context,
    r: &Resolver<'_>,
    args: &DeployArgs,
    id: &DeploymentId,
) -> Result<Code, Failure> {
    if let Some(image) = &args.image {
        return Ok(Code::Image(image.clone()));
    }
    if let Some(repo) = &args.repo {
        return Ok(Code::Repo {
            repo: repo.clone(),
            branch: args.branch.clone(),
        });
    }
    let context = args.context.clone().unwrap_or_else(|| PathBuf::from("."));
    if let Some(repository) = r.optional(&IMAGE_REPOSITORY).map_err(usage)? {
        image::check_tools().await?;
        let build = image::BuildSpec {
            dockerfile: args
                .dockerfile
                .as_deref()
                .map(|df| pack::resolve_dockerfile(&context, df)),
            context,
            tag: format!("{repository}:{id}"),
        };
        step(ctx, &format!("building {} with docker buildx", build.tag));
        image::build_and_push(&build, ctx.json).await?;
        step(ctx, &format!("pushed {}", build.tag));
        return Ok(Code::Image(build.tag));
    }

    let limit = r.get(&MAX_CONTEXT_SIZE).map_err(usage)?.0;
    let options = pack::Options {
        root: context,
        dockerfile: args.dockerfile.clone(),
        gitignore: !args.no_gitignore,
        default_excludes: !args.no_default_excludes,
    };
    let draw = Progress::on_terminal(ctx.json);
    // Walking and compressing are blocking file work.
    let (index, archive) = tokio::task::spawn_blocking(move || {
        let index = pack::index(&options).map_err(usage)?;
        index.check_limit(limit).map_err(|e| Failure {
            code: 1,
            error: anyhow::anyhow!(e),
        })?;
        let bar = Progress::new("packing", index.total, draw);
        let archive = index.pack(&bar);
        bar.finish();
        let archive = archive.map_err(|e| {
            anyhow::anyhow!(
                "packing {}: {e}; nothing was created",
                index.root().display()
            )
        })?;
        Ok::<_, Failure>((index, archive))
    })
    .await
    .map_err(|e| anyhow::anyhow!("packing the build context: {e}"))??;
    step(
        ctx,
        &format!(
            "packed {} files from {} ({} -> {} compressed)",
            index.files(),
            index.root().display(),
            switchyard_core::config::human_bytes(index.total),
            switchyard_core::config::human_bytes(archive.len() as u64),
        ),
    );
    Ok(Code::Upload(provision::Upload {
        archive: archive.into(),
        dockerfile: index.dockerfile,
        draw,
    }))
}

/// Removes what a failed deploy made: the pending record and, on Railway,
/// the service. The active deployment is never touched.
async fn undo(ctx: &Context, id: &DeploymentId, backend: &provision::Backend) {
    let _ = ctx.store.delete_unless_active(id).await;
    if let (Some(rp), Some(service_id)) = (&ctx.railway, &backend.service_id)
        && let Err(e) = rp
            .client()
            .service_delete(service_id, Some(rp.environment_id()))
            .await
    {
        eprintln!(
            "switchyard: could not delete the half-made Railway service {}: {e}; delete it in Railway",
            backend.service_name
        );
    }
}

fn step(ctx: &Context, line: &str) {
    if ctx.json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}
