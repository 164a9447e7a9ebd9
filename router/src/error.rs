//! What can go wrong with a request, in one type every part of the
//! router returns: the client's faults, the backends', and the router's
//! own. `request::respond` turns it into the answer a client sees.

use http::StatusCode;
use switchyard_core::DeploymentId;

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("no deployment snapshot yet; the store has not been reachable since start")]
    NoSnapshot,
    #[error("deployment not found")]
    DeploymentNotFound,
    #[error("not found")]
    InternalPath,
    #[error("ambiguous request path: {0}")]
    AmbiguousPath(&'static str),
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("request head larger than the router accepts")]
    HeadTooLarge,
    /// A request the HTTP/1 engine refuses with a status of its own
    /// (414, 431, 501).
    #[error("{why}")]
    Refused {
        status: StatusCode,
        why: &'static str,
    },
    #[error("bad request: the request names more than one deployment")]
    ConflictingPins,
    #[error("unsupported WebSocket version; this router speaks 13 (RFC 6455)")]
    WebSocketVersion,
    #[error("bad request: the request body ended early or was malformed")]
    ClientBody(String),
    #[error("request timeout: the request body arrived too slowly")]
    SlowUpload(String),
    #[error("backend of deployment {id} is unreachable: {reason}")]
    BackendUnreachable { id: DeploymentId, reason: String },
    #[error("backend of deployment {id} did not answer in time")]
    BackendTimeout { id: DeploymentId },
    #[error("backend of deployment {id} failed: {reason}")]
    BackendFailed { id: DeploymentId, reason: String },
}

impl RouterError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoSnapshot => StatusCode::SERVICE_UNAVAILABLE,
            Self::DeploymentNotFound | Self::InternalPath => StatusCode::NOT_FOUND,
            Self::AmbiguousPath(_)
            | Self::BadRequest(_)
            | Self::ConflictingPins
            | Self::ClientBody(_) => StatusCode::BAD_REQUEST,
            Self::WebSocketVersion => StatusCode::UPGRADE_REQUIRED,
            Self::SlowUpload(_) => StatusCode::REQUEST_TIMEOUT,
            Self::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::Refused { status, .. } => *status,
            Self::BackendUnreachable { .. } | Self::BackendFailed { .. } => StatusCode::BAD_GATEWAY,
            Self::BackendTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The deployment the failure concerns, for the log line.
    pub fn deployment(&self) -> Option<&DeploymentId> {
        match self {
            Self::BackendUnreachable { id, .. }
            | Self::BackendTimeout { id }
            | Self::BackendFailed { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// The error and its causes on one line: hyper's top-level messages alone
/// ("client error (Connect)") do not say what happened.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
