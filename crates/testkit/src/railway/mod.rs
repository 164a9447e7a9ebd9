//! A fake Railway GraphQL API: the one fake the project allows, because the
//! real API cannot be reached from here. It answers the operations the
//! client sends, by `operationName`, from state kept in memory; it can be
//! told to fail, and it records every request so tests can check what was
//! sent (and validate it against Railway's schema). Beside GraphQL it takes
//! source uploads (`POST /project/{p}/environment/{e}/up`), checks each is a
//! gzip-compressed tar and records its file list.

use std::{
    collections::{BTreeMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;

mod graphql;

use graphql::graphql;

/// How a request authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentAuth {
    Bearer(String),
    Project(String),
    None,
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub operation: String,
    pub query: String,
    pub variables: Value,
    pub auth: SentAuth,
}

/// An injected failure for the next N requests of one operation.
#[derive(Debug, Clone)]
pub enum Failure {
    Http(u16),
    GraphQl(String),
}

#[derive(Debug, Clone, Default)]
pub struct FakeService {
    pub id: String,
    pub name: String,
    pub source: Value,
    pub variables: BTreeMap<String, String>,
    pub instance: Value,
    /// Railway domains: (domain, target port).
    pub domains: Vec<(String, u16)>,
    pub deleted: bool,
}

/// One source upload, as received.
#[derive(Debug, Clone)]
pub struct FakeUpload {
    pub service_id: String,
    pub deployment_id: String,
    /// Paths in the archive, in archive order, without a leading `./`.
    pub files: Vec<String>,
    /// Compressed size of the body.
    pub bytes: usize,
    pub content_type: Option<String>,
    pub auth: SentAuth,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub project_id: String,
    pub project_name: String,
    pub environment_id: String,
    pub services: Vec<FakeService>,
    pub shared_variables: BTreeMap<String, String>,
    /// Railway deployment id → statuses still to report (the last repeats).
    pub deployments: BTreeMap<String, (String, VecDeque<String>)>,
    /// Service id → its latest deployment id.
    pub latest: BTreeMap<String, String>,
    /// Statuses the next deployment will report, one per poll.
    pub next_statuses: Vec<String>,
    pub failures: BTreeMap<String, VecDeque<Failure>>,
    pub sent: Vec<Sent>,
    /// Accepted tokens; empty accepts any.
    pub tokens: Vec<String>,
    /// Project tokens handed out by `projectTokenCreate`.
    pub tokens_minted: Vec<String>,
    pub uploads: Vec<FakeUpload>,
    /// Requests that broke Railway's schema (each also failed).
    pub schema_violations: Vec<String>,
    /// Workspace ids `projectCreate` was called with.
    pub projects_created_in: Vec<String>,
    seq: u64,
}

impl FakeState {
    fn id(&mut self, kind: &str) -> String {
        self.seq += 1;
        format!("{kind}-{:04}", self.seq)
    }
}

pub struct FakeRailway {
    pub addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRailway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeRailway {
    /// A project `proj-0001` with environment `env-0001` (production).
    pub async fn start() -> Self {
        let mut st = FakeState {
            project_name: "demo".into(),
            next_statuses: vec!["BUILDING".into(), "DEPLOYING".into(), "SUCCESS".into()],
            ..Default::default()
        };
        st.project_id = st.id("proj");
        st.environment_id = st.id("env");
        let state = Arc::new(Mutex::new(st));
        let app = Router::new()
            .route("/graphql/v2", post(graphql))
            .route(
                "/project/{project}/environment/{environment}/up",
                post(upload),
            )
            .layer(DefaultBodyLimit::max(512 << 20))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake railway");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// Base URL to give the client as `SWITCHYARD_RAILWAY_API`.
    pub fn api(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_service(&self, name: &str) -> String {
        let mut st = self.state();
        let id = st.id("svc");
        st.services.push(FakeService {
            id: id.clone(),
            name: name.into(),
            ..Default::default()
        });
        id
    }

    pub fn fail(&self, operation: &str, failure: Failure, times: usize) {
        let mut st = self.state();
        let q = st.failures.entry(operation.into()).or_default();
        for _ in 0..times {
            q.push_back(failure.clone());
        }
    }

    pub fn sent(&self, operation: &str) -> Vec<Sent> {
        self.state()
            .sent
            .iter()
            .filter(|s| s.operation == operation)
            .cloned()
            .collect()
    }

    pub fn live_service(&self, name: &str) -> Option<FakeService> {
        self.state()
            .services
            .iter()
            .find(|s| s.name == name && !s.deleted)
            .cloned()
    }
}

fn gql_error(msg: &str) -> Response {
    Json(json!({ "data": null, "errors": [{ "message": msg }] })).into_response()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn sent_auth(headers: &HeaderMap) -> SentAuth {
    match (
        header(headers, "authorization"),
        header(headers, "project-access-token"),
    ) {
        (Some(b), _) => SentAuth::Bearer(b.trim_start_matches("Bearer ").to_string()),
        (None, Some(p)) => SentAuth::Project(p),
        _ => SentAuth::None,
    }
}

fn token_ok(st: &FakeState, auth: &SentAuth) -> bool {
    match auth {
        SentAuth::None => false,
        SentAuth::Bearer(t) | SentAuth::Project(t) => st.tokens.is_empty() || st.tokens.contains(t),
    }
}

impl FakeState {
    /// A new Railway deployment of `service_id` that reports `next_statuses`.
    fn start_deployment(&mut self, service_id: &str) -> String {
        let id = self.id("dep");
        let statuses: VecDeque<String> = self.next_statuses.iter().cloned().collect();
        self.deployments
            .insert(id.clone(), (service_id.to_string(), statuses));
        self.latest.insert(service_id.to_string(), id.clone());
        id
    }

    /// A deployment's next status: each read advances one step, the last
    /// one stays.
    fn next_status(&mut self, id: &str) -> Option<String> {
        let (_, statuses) = self.deployments.get_mut(id)?;
        let status = if statuses.len() > 1 {
            statuses.pop_front()
        } else {
            statuses.front().cloned()
        };
        Some(status.unwrap_or_else(|| "SUCCESS".into()))
    }
}

/// Lists the paths of a gzip-compressed tar, or says why it is not one.
pub fn tar_gz_paths(body: &[u8]) -> Result<Vec<String>, String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(body));
    let entries = archive.entries().map_err(|e| e.to_string())?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("not a gzip-compressed tar: {e}"))?;
        let path = entry.path().map_err(|e| e.to_string())?;
        let path = path.to_string_lossy();
        files.push(path.trim_start_matches("./").to_string());
    }
    Ok(files)
}

async fn upload(
    State(state): State<Arc<Mutex<FakeState>>>,
    Path((project, environment)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    let auth = sent_auth(&headers);
    if !token_ok(&st, &auth) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "message": "Not Authorized" })),
        )
            .into_response();
    }
    let bad =
        |msg: String| (StatusCode::BAD_REQUEST, Json(json!({ "message": msg }))).into_response();
    if let Some(f) = st.failures.get_mut("up").and_then(VecDeque::pop_front) {
        return match f {
            Failure::Http(code) => (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                Json(json!({ "message": "upload refused" })),
            )
                .into_response(),
            Failure::GraphQl(msg) => bad(msg),
        };
    }
    if project != st.project_id || environment != st.environment_id {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "message": "Project or environment not found" })),
        )
            .into_response();
    }
    let service_id = query.get("serviceId").cloned().unwrap_or_default();
    if !st.services.iter().any(|s| s.id == service_id && !s.deleted) {
        return bad(format!("Service {service_id:?} not found"));
    }
    let files = match tar_gz_paths(&body) {
        Ok(files) => files,
        Err(e) => return bad(e),
    };
    let deployment_id = st.start_deployment(&service_id);
    st.uploads.push(FakeUpload {
        service_id: service_id.clone(),
        deployment_id: deployment_id.clone(),
        files,
        bytes: body.len(),
        content_type: header(&headers, "content-type"),
        auth,
    });
    Json(json!({
        "deploymentId": deployment_id,
        "url": format!("https://{service_id}.up.railway.app"),
        "logsUrl": format!("https://railway.com/project/{project}/service/{service_id}?id={deployment_id}"),
        "deploymentDomain": format!("{service_id}.up.railway.app"),
    }))
    .into_response()
}
