//! The names of the routing protocol: query params, headers, cookies and
//! paths that Pulse apps and their clients already use. Defaults match
//! pulse-railway; every one can be overridden.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingNames {
    /// Query parameter that pins a request to a deployment.
    pub query_param: String,
    /// Request header that pins a request to a deployment.
    pub header: String,
    /// Cookie that pins a request, when cookie affinity is enabled.
    pub cookie: Option<String>,
    /// Query parameter a WebSocket sets to fall back to the active deployment
    /// instead of failing on stale affinity.
    pub ws_fallback_param: String,
    /// Path prefix that is never forwarded from the public side.
    pub internal_prefix: String,
    /// The router's own health endpoint.
    pub health_path: String,
    /// Path prefix of the router's own endpoints for the browser client
    /// (its script and the pin status); never forwarded either.
    pub client_prefix: String,
}

impl Default for RoutingNames {
    fn default() -> Self {
        Self {
            query_param: DEFAULT_QUERY_PARAM.into(),
            header: DEFAULT_HEADER.into(),
            cookie: None,
            ws_fallback_param: "pulse_reload_on_stale_affinity".into(),
            internal_prefix: "/_pulse/internal".into(),
            health_path: "/healthz".into(),
            client_prefix: "/_switchyard".into(),
        }
    }
}

/// Fixed protocol header names (not configurable: clients hard-code them;
/// `clients/browser/src/core.ts` holds the ones the browser client reads,
/// and a test in `crates/core/tests/browser_names.rs` keeps the two equal).
pub mod headers {
    /// Marks every answer the router makes itself (`x-switchyard: router`).
    pub const ROUTER_MARKER: &str = "x-switchyard";
    /// On a router's reload answers: spread the reload over this many
    /// milliseconds.
    pub const RELOAD_WINDOW_MS: &str = "x-switchyard-reload-window-ms";
    pub const SELECTED_DEPLOYMENT: &str = "x-pulse-selected-deployment";
    pub const STALE_AFFINITY: &str = "x-pulse-stale-affinity";
    pub const CLIENT_LOADER: &str = "x-pulse-client-loader";
    pub const CLIENT_LOADER_LOCATION: &str = "x-pulse-client-loader-location";
    pub const INTERNAL_TOKEN: &str = "x-pulse-railway-internal-token";
    /// On responses to pinned requests: the deployment unpinned traffic
    /// goes to now, so a page can tell an update is out.
    pub const ACTIVE_DEPLOYMENT: &str = "x-switchyard-active";
    /// Set when an asset request fell through to an older deployment.
    pub const FELL_THROUGH: &str = "x-switchyard-fell-through";
}

/// The `Server-Timing` metrics the router labels each routed response with,
/// which the browser client reads when headers are out of its reach (a
/// document's own response).
pub mod timing {
    /// The pin the page should send (an id, or a signed token).
    pub const PIN: &str = "switchyard-pin";
    /// The deployment that served the response.
    pub const DEPLOYMENT: &str = "switchyard-deployment";
    /// The deployment unpinned traffic goes to now.
    pub const ACTIVE: &str = "switchyard-active";

    /// The whole label: `pin`, the serving `deployment`, and the active one
    /// when there is one. Pins and ids are header-safe by construction
    /// (`[a-z0-9-]`, or a token of base64url and dots).
    pub fn label(pin: &str, deployment: &str, active: Option<&str>) -> String {
        use std::fmt::Write;
        // One allocation: strict mode builds this per pinned response.
        let mut out =
            String::with_capacity(64 + pin.len() + deployment.len() + active.map_or(0, str::len));
        let _ = write!(
            out,
            "{PIN};desc=\"{pin}\", {DEPLOYMENT};desc=\"{deployment}\""
        );
        if let Some(a) = active {
            let _ = write!(out, ", {ACTIVE};desc=\"{a}\"");
        }
        out
    }
}

/// The router's own endpoints for the browser client, under
/// [`RoutingNames::client_prefix`].
pub mod client_paths {
    /// The client script.
    pub const SCRIPT: &str = "/client.js";
    /// The pin's status (`fresh`, `stale`, and what to load instead).
    pub const STATUS: &str = "/status";
}

/// The cookie that carries a pinned page's pin to its own subresources.
pub const PAGE_COOKIE: &str = "switchyard_page_pin";

/// The close code routers send a deployment's WebSockets when it is
/// retired or revoked (RFC 6455 §7.4.1 "service restart"): reconnect.
pub const RELOAD_CLOSE_CODE: u16 = 1012;

/// Backend endpoints a Pulse app serves.
pub mod backend_paths {
    pub const HEALTH: &str = "/_pulse/health";
    pub const META: &str = "/_pulse/meta";
    pub const RELOAD: &str = "/_pulse/internal/railway/reload";
    pub const SESSIONS: &str = "/_pulse/internal/railway/sessions";
}

/// The pin's query parameter and header as routers are configured unless
/// told otherwise; the CLI, which cannot ask a router, uses these.
pub const DEFAULT_QUERY_PARAM: &str = "pulse_deployment";
pub const DEFAULT_HEADER: &str = "x-pulse-deployment";

/// Default Redis key prefix, shared with pulse-railway.
pub const DEFAULT_PREFIX: &str = "pulse:railway";
