//! Every Redis key and channel name, in one place. Documented in the README.
//!
//! | key                              | type   | holds                                        |
//! |----------------------------------|--------|----------------------------------------------|
//! | `<p>:active`                     | string | the active deployment id                     |
//! | `<p>:deployment:<id>`            | string | the deployment record (JSON)                 |
//! | `<p>:deployments`                | set    | every registered id                          |
//! | `<p>:services`                   | hash   | service name → deployment id                 |
//! | `<p>:version`                    | int    | snapshot version                             |
//! | `<p>:rollout`                    | string | `{deployment_id, percent}` (JSON) or absent  |
//! | `<p>:replicas`                   | set    | router replica ids that have leases          |
//! | `<p>:replica:<r>`                | hash   | `lease:<id>` → open WebSockets; TTL'd        |
//! | `<p>:stats:<id>:<window>`        | hash   | requests, errors_5xx, latency_ms_sum; TTL'd  |
//! | `<p>:lock:<name>`                | string | lock token; TTL'd (`janitor` lock is          |
//! |                                  |        | `<p>:janitor:lock` for pulse-railway compat) |
//! | `<p>:events`                     | pubsub | change and reload notifications (JSON)       |
//! | `<p>:meta:<name>`                | string | a document one program publishes (JSON)      |

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_end_matches(':').to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn active(&self) -> String {
        format!("{}:active", self.prefix)
    }

    pub fn deployment(&self, id: &str) -> String {
        format!("{}:deployment:{id}", self.prefix)
    }

    pub fn events(&self) -> String {
        format!("{}:events", self.prefix)
    }

    pub fn replica(&self, replica: &str) -> String {
        format!("{}:replica:{replica}", self.prefix)
    }

    pub fn replicas(&self) -> String {
        format!("{}:replicas", self.prefix)
    }

    pub fn meta(&self, name: &str) -> String {
        format!("{}:meta:{name}", self.prefix)
    }

    pub fn lock(&self, name: &str) -> String {
        if name == "janitor" {
            format!("{}:janitor:lock", self.prefix)
        } else {
            format!("{}:lock:{name}", self.prefix)
        }
    }
}
