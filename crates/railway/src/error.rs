//! What can go wrong talking to Railway, in terms a user can act on.

#[derive(Debug, thiserror::Error)]
pub enum RailwayError {
    #[error(
        "Railway rejected the token ({0}); check RAILWAY_API_TOKEN (account or workspace token) or RAILWAY_TOKEN (project token)"
    )]
    Unauthorized(String),
    #[error("Railway rate-limited the request; try again in a minute")]
    RateLimited,
    #[error("Railway answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("Railway: {}", messages.join("; "))]
    GraphQl {
        operation: &'static str,
        messages: Vec<String>,
    },
    #[error("cannot reach Railway: {0}")]
    Transport(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("unexpected answer from Railway to {operation}: {detail}")]
    Decode {
        operation: &'static str,
        detail: String,
    },
}

impl RailwayError {
    /// Failures worth retrying: the request may not have been processed, or
    /// Railway asked us to slow down.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::RateLimited | Self::Transport(_) => true,
            Self::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The GraphQL error says the thing does not exist (already deleted).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::GraphQl { messages, .. } if messages.iter().any(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("not found") || m.contains("does not exist")
        }))
    }
}
