//! Making the backend of a new deployment exist and run: on the static
//! platform it already does (a URL); on Railway it is a new service, its
//! variables, and a build that must reach `SUCCESS`.

use std::{collections::BTreeMap, time::Duration};

use switchyard_core::DeploymentId;
use switchyard_railway::RailwayPlatform;
use switchyard_railway::ops::Source;

use crate::{Failure, progress::Progress};

/// A running backend, ready to register.
#[derive(Debug, Clone)]
pub struct Backend {
    pub url: String,
    pub service_name: String,
    pub service_id: Option<String>,
}

/// What Railway runs for the new service.
#[derive(Debug, Clone)]
pub enum Code {
    /// A prebuilt (or just pushed) image.
    Image(String),
    /// A GitHub repository Railway builds.
    Repo {
        repo: String,
        branch: Option<String>,
    },
    /// A packed build context, uploaded for Railway to build.
    Upload(Upload),
}

#[derive(Debug, Clone)]
pub struct Upload {
    /// The gzip-compressed tar.
    pub archive: bytes::Bytes,
    /// The Dockerfile's path inside the archive, when not the default.
    pub dockerfile: Option<String>,
    /// Draw an upload progress bar.
    pub draw: bool,
}

#[derive(Debug, Clone)]
pub struct RailwaySpec {
    pub code: Code,
    pub port: u16,
    pub service_prefix: String,
    pub env_service: String,
    pub redis_service: String,
    pub internal_token: Option<String>,
    /// How the router reaches a service: `{service}` and `{port}` are filled in.
    pub backend_url_template: String,
    pub build_timeout: Duration,
    pub poll_interval: Duration,
}

pub const DEFAULT_BACKEND_URL: &str = "http://{service}.railway.internal:{port}";

/// Creates, configures and deploys the service, waiting for `SUCCESS`. On
/// failure the service is deleted again and the error says so.
pub async fn railway(
    rp: &RailwayPlatform,
    id: &DeploymentId,
    spec: &RailwaySpec,
    progress: &dyn Fn(&str),
) -> Result<Backend, Failure> {
    let client = rp.client();
    let (project, env) = (rp.project_id(), rp.environment_id());
    let name = format!("{}{id}", spec.service_prefix);
    let existing = client.project(project).await?;
    // User variables live on the env service; each backend references them,
    // so a secret is set once.
    let mut variables: BTreeMap<String, String> = BTreeMap::new();
    if let Some(env_service) = existing.service(&spec.env_service) {
        for key in client
            .variables(project, env, Some(&env_service.id))
            .await?
            .into_keys()
        {
            if !key.starts_with("RAILWAY_") {
                variables.insert(key.clone(), format!("${{{{{}.{key}}}}}", spec.env_service));
            }
        }
    }
    variables.insert("PULSE_DEPLOYMENT_ID".into(), id.to_string());
    variables.insert("PORT".into(), spec.port.to_string());
    if existing.service(&spec.redis_service).is_some() {
        variables.insert(
            "PULSE_RAILWAY_REDIS_URL".into(),
            format!("${{{{{}.REDIS_URL}}}}", spec.redis_service),
        );
    }
    if let Some(token) = &spec.internal_token {
        variables.insert("PULSE_RAILWAY_INTERNAL_TOKEN".into(), token.clone());
    }

    let (source, branch) = match &spec.code {
        Code::Image(image) => (Some(Source::Image(image.clone())), None),
        Code::Repo { repo, branch } => (Some(Source::Repo(repo.clone())), branch.as_deref()),
        // The upload is the source: the service starts empty.
        Code::Upload(_) => (None, None),
    };
    let service = client
        .service_create(project, env, &name, source.as_ref(), branch)
        .await?;
    progress(&format!("created Railway service {name} ({})", service.id));
    let result = configure_and_build(rp, &service.id, spec, &variables, progress).await;
    if let Err(e) = result {
        return Err(match client.service_delete(&service.id, Some(env)).await {
            Ok(()) => anyhow::anyhow!("{:#}; the half-made service {name} was deleted", e.error).into(),
            Err(cleanup) => anyhow::anyhow!("{:#}; deleting the half-made service {name} also failed ({cleanup}): delete it in Railway", e.error).into(),
        });
    }
    let url = spec
        .backend_url_template
        .replace("{service}", &name)
        .replace("{port}", &spec.port.to_string());
    Ok(Backend {
        url,
        service_name: name,
        service_id: Some(service.id),
    })
}

async fn configure_and_build(
    rp: &RailwayPlatform,
    service_id: &str,
    spec: &RailwaySpec,
    variables: &BTreeMap<String, String>,
    progress: &dyn Fn(&str),
) -> Result<(), Failure> {
    let client = rp.client();
    let (project, env) = (rp.project_id(), rp.environment_id());
    client
        .upsert_variables(project, env, Some(service_id), variables, true)
        .await?;
    progress(&format!("set {} variables", variables.len()));
    let mut instance =
        serde_json::json!({ "restartPolicyType": "ON_FAILURE", "restartPolicyMaxRetries": 5 });
    if let Code::Upload(Upload {
        dockerfile: Some(path),
        ..
    }) = &spec.code
    {
        instance["dockerfilePath"] = path.as_str().into();
    }
    client
        .service_instance_update(service_id, env, &instance)
        .await?;
    let deployment = match &spec.code {
        Code::Upload(upload) => {
            let bar = std::sync::Arc::new(Progress::new(
                "uploading",
                upload.archive.len() as u64,
                upload.draw,
            ));
            let up = client
                .upload_source(project, env, service_id, upload_body(upload, bar.clone()))
                .await;
            bar.finish();
            let up = up?;
            progress(&format!(
                "uploaded {}; build logs: {}",
                switchyard_core::config::human_bytes(upload.archive.len() as u64),
                up.logs_url
            ));
            up.deployment_id
        }
        Code::Image(_) | Code::Repo { .. } => client.deploy(service_id, env).await?,
    };
    progress(&format!("Railway deployment {deployment} started"));
    wait_for_success(rp, &deployment, spec, progress).await
}

/// The archive as a stream of chunks, so the bar moves as hyper takes them.
fn upload_body(upload: &Upload, bar: std::sync::Arc<Progress>) -> reqwest::Body {
    const CHUNK: usize = 64 * 1024;
    let archive = upload.archive.clone();
    let chunks = (0..archive.len().div_ceil(CHUNK)).map(move |i| {
        let chunk = archive.slice(i * CHUNK..((i + 1) * CHUNK).min(archive.len()));
        bar.advance(chunk.len() as u64);
        Ok::<_, std::io::Error>(chunk)
    });
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

async fn wait_for_success(
    rp: &RailwayPlatform,
    deployment: &str,
    spec: &RailwaySpec,
    progress: &dyn Fn(&str),
) -> Result<(), Failure> {
    let started = tokio::time::Instant::now();
    let mut last = String::new();
    loop {
        let d = rp.client().deployment(deployment).await?;
        if d.status != last {
            progress(&format!(
                "  {:>4}s  {}",
                started.elapsed().as_secs(),
                d.status
            ));
            last = d.status.clone();
        }
        if d.succeeded() {
            return Ok(());
        }
        if d.failed() {
            return Err(anyhow::anyhow!("Railway deployment {deployment} ended {}; see its build and deploy logs in Railway", d.status).into());
        }
        if started.elapsed() >= spec.build_timeout {
            return Err(anyhow::anyhow!(
                "Railway deployment {deployment} was still {} after {:?} (--build-timeout)",
                d.status,
                spec.build_timeout
            )
            .into());
        }
        tokio::time::sleep(spec.poll_interval).await;
    }
}
