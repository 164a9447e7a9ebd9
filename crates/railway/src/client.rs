//! The one request path: POST `{query, variables, operationName}` with the
//! right auth header, typed errors, and retries with backoff for transient
//! failures of operations that are safe to repeat.

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};
use switchyard_core::config::{EnvSource, Resolver};

use crate::{Operation, RailwayError};

/// Railway's API host. The GraphQL endpoint is `{api}/graphql/v2`.
pub const DEFAULT_API: &str = "https://backboard.railway.com";

/// The variables every program that calls Railway's API reads, declared
/// once here for their help and docs.
pub mod settings {
    use switchyard_core::config::Setting;

    switchyard_core::settings! {
        shared;
        pub API_TOKEN: String = Setting::new(
            "",
            &["RAILWAY_API_TOKEN"],
            "Railway account or workspace token, sent as Authorization: Bearer; read before RAILWAY_TOKEN",
        )
        .secret();
        pub PROJECT_TOKEN: String = Setting::new(
            "",
            &["RAILWAY_TOKEN"],
            "Railway project token, sent as Project-Access-Token",
        )
        .secret();
        pub API: String = Setting::new(
            "",
            &["SWITCHYARD_RAILWAY_API"],
            "Railway API host (tests point it at a fake)",
        )
        .parsed_by(|s| Ok(s.trim().trim_end_matches('/').to_string()))
        .default(|| super::DEFAULT_API.into());
    }
}

/// Which kind of token, which decides the header it travels in.
#[derive(Clone)]
pub enum Auth {
    /// Account or workspace token (`RAILWAY_API_TOKEN`): `Authorization: Bearer`.
    Account(String),
    /// Project token (`RAILWAY_TOKEN`): `Project-Access-Token`.
    Project(String),
    /// The local Railway CLI's login (`railway login`): a short-lived user
    /// token, `Authorization: Bearer`. Good for commands run by a person;
    /// never written into a service (see [`Client::upsert_variables`]).
    User(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a token.
        f.write_str(match self {
            Self::Account(_) => "Auth::Account(***)",
            Self::Project(_) => "Auth::Project(***)",
            Self::User(_) => "Auth::User(***)",
        })
    }
}

impl Auth {
    /// The local Railway CLI's login, from its config file
    /// (`~/.railway/config.json`, `user.token`), for when no token variable
    /// is set.
    pub fn from_cli_login(home: &std::path::Path) -> Option<Self> {
        let raw = std::fs::read_to_string(home.join(".railway").join("config.json")).ok()?;
        let config: serde_json::Value = serde_json::from_str(&raw).ok()?;
        let token = config["user"]["token"].as_str()?.trim();
        (!token.is_empty()).then(|| Self::User(token.to_string()))
    }

    /// `RAILWAY_API_TOKEN` first, then `RAILWAY_TOKEN`.
    pub fn from_env(env: &dyn EnvSource) -> Option<Self> {
        // A string setting always parses: no error to lose here.
        let r = Resolver::new(env);
        let get = |s| r.optional(s).ok().flatten();
        get(&settings::API_TOKEN)
            .map(Self::Account)
            .or_else(|| get(&settings::PROJECT_TOKEN).map(Self::Project))
    }

    fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Self::Account(t) | Self::User(t) => req.bearer_auth(t),
            Self::Project(t) => req.header("Project-Access-Token", t),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// API host; `SWITCHYARD_RAILWAY_API` overrides it (tests point it at a fake).
    pub api: String,
    pub auth: Auth,
    pub timeout: Duration,
    /// Attempts for a transient failure of a repeatable operation.
    pub attempts: u32,
    pub backoff: Duration,
}

impl ClientSettings {
    pub fn new(auth: Auth) -> Self {
        Self {
            api: DEFAULT_API.into(),
            auth,
            timeout: Duration::from_secs(30),
            attempts: 3,
            backoff: Duration::from_millis(500),
        }
    }

    pub fn from_env(env: &dyn EnvSource) -> Option<Self> {
        Self::with_auth(env, Auth::from_env(env)?)
    }

    /// As [`Self::from_env`], falling back to the local Railway CLI's
    /// login when no token variable is set: for commands a person runs.
    pub fn from_env_or_login(env: &dyn EnvSource) -> Option<Self> {
        let auth = Auth::from_env(env).or_else(|| {
            let home = env.var("HOME").filter(|h| !h.is_empty())?;
            Auth::from_cli_login(std::path::Path::new(&home))
        })?;
        Self::with_auth(env, auth)
    }

    fn with_auth(env: &dyn EnvSource, auth: Auth) -> Option<Self> {
        let mut s = Self::new(auth);
        if let Ok(Some(api)) = Resolver::new(env).optional(&settings::API) {
            s.api = api;
        }
        Some(s)
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    settings: ClientSettings,
}

#[derive(serde::Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<GraphQlError>,
}

#[derive(serde::Deserialize)]
struct GraphQlError {
    message: String,
}

impl Client {
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    pub fn new(settings: ClientSettings) -> Result<Self, RailwayError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RailwayError::Transport(e.to_string()))?;
        Ok(Self { http, settings })
    }

    pub fn api(&self) -> &str {
        &self.settings.api
    }

    pub fn auth(&self) -> &Auth {
        &self.settings.auth
    }

    /// Sends one operation. Transient failures are retried with growing
    /// backoff, but only for operations marked repeatable: a mutation that
    /// may have been applied is never sent twice.
    pub async fn request<V: Serialize, R: DeserializeOwned>(
        &self,
        op: &Operation,
        variables: &V,
    ) -> Result<R, RailwayError> {
        let body = serde_json::json!({ "query": op.query, "variables": variables, "operationName": op.name });
        let attempts = if op.repeatable {
            self.settings.attempts.max(1)
        } else {
            1
        };
        let mut delay = self.settings.backoff;
        let mut attempt = 1;
        loop {
            match self.send_once(op, &body).await {
                Err(e) if e.is_transient() && attempt < attempts => {
                    tracing::debug!(operation = op.name, attempt, error = %e, "retrying Railway request");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn send_once<R: DeserializeOwned>(
        &self,
        op: &Operation,
        body: &serde_json::Value,
    ) -> Result<R, RailwayError> {
        let url = format!("{}/graphql/v2", self.settings.api);
        let req = self.settings.auth.apply(self.http.post(&url).json(body));
        let (status, text) = send(req).await?;
        if let Some(e) = http_error(status, &text) {
            return Err(e);
        }
        let envelope: Envelope<R> =
            serde_json::from_str(&text).map_err(|e| RailwayError::Decode {
                operation: op.name,
                detail: e.to_string(),
            })?;
        if !envelope.errors.is_empty() {
            let messages: Vec<String> = envelope.errors.into_iter().map(|e| e.message).collect();
            if messages
                .iter()
                .any(|m| m.to_ascii_lowercase().contains("not authorized"))
            {
                return Err(RailwayError::Unauthorized(messages.join("; ")));
            }
            return Err(RailwayError::GraphQl {
                operation: op.name,
                messages,
            });
        }
        envelope.data.ok_or_else(|| RailwayError::Decode {
            operation: op.name,
            detail: "no data and no errors".into(),
        })
    }
}

/// What Railway answers to a source upload.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Upload {
    /// The Railway deployment building the upload; poll it like any other.
    pub deployment_id: String,
    /// Where the build logs are shown in Railway's dashboard.
    #[serde(default)]
    pub logs_url: String,
}

impl Client {
    /// Sends a gzip-compressed tar of a build context to Railway, which
    /// builds it as a new deployment of `service_id`. Not on the GraphQL
    /// endpoint but on the same host with the same auth header. Never
    /// retried: the body is a one-shot stream and the upload starts a build.
    pub async fn upload_source(
        &self,
        project_id: &str,
        environment_id: &str,
        service_id: &str,
        body: reqwest::Body,
    ) -> Result<Upload, RailwayError> {
        let mut url = reqwest::Url::parse(&format!("{}/", self.settings.api))
            .map_err(|e| RailwayError::Transport(format!("bad API URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| RailwayError::Transport("bad API URL".into()))?
            .pop_if_empty()
            .extend(["project", project_id, "environment", environment_id, "up"]);
        url.query_pairs_mut().append_pair("serviceId", service_id);
        // Uploading 100 MiB over a slow link takes longer than a GraphQL call.
        let req = self
            .http
            .post(url)
            .timeout(
                self.settings
                    .timeout
                    .max(std::time::Duration::from_secs(600)),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/gzip")
            .body(body);
        let (status, text) = send(self.settings.auth.apply(req)).await?;
        match http_error(status, &text) {
            None => serde_json::from_str(&text).map_err(|e| RailwayError::Decode {
                operation: "source upload",
                detail: e.to_string(),
            }),
            Some(RailwayError::Http { status: 413, body }) => Err(RailwayError::Http {
                status,
                body: format!("the upload is larger than Railway accepts: {body}"),
            }),
            Some(e) => Err(e),
        }
    }
}

async fn send(req: reqwest::RequestBuilder) -> Result<(u16, String), RailwayError> {
    let res = req
        .send()
        .await
        .map_err(|e| RailwayError::Transport(e.to_string()))?;
    let status = res.status().as_u16();
    let text = res
        .text()
        .await
        .map_err(|e| RailwayError::Transport(e.to_string()))?;
    Ok((status, text))
}

/// The error a non-2xx answer means, with Railway's message when it sent one.
fn http_error(status: u16, text: &str) -> Option<RailwayError> {
    let message = || first_message(text);
    match status {
        200..=299 => None,
        401 | 403 => Some(RailwayError::Unauthorized(
            message().unwrap_or_else(|| format!("HTTP {status}")),
        )),
        429 => Some(RailwayError::RateLimited),
        _ => Some(RailwayError::Http {
            status,
            body: message().unwrap_or_else(|| truncate(text)),
        }),
    }
}

/// The message of a GraphQL error list, or of a REST error body.
fn first_message(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v["errors"][0]["message"]
        .as_str()
        .or_else(|| v["message"].as_str())
        .map(str::to_string)
}

fn truncate(text: &str) -> String {
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
