//! Every Redis key and channel name, in one place (docs/store.md shows the
//! same table). The Lua scripts build the same names inside Redis from the
//! prefix; `SCHEMA` is the list both must use, and a test reads every
//! script and fails on a key shape that is not in it.
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
//! | `<p>:replica:<r>`                | hash   | `lease:<id>` → open WebSockets, `seen`,      |
//! |                                  |        | `report` (JSON); TTL'd                       |
//! | `<p>:stats:<id>:<window>`        | hash   | requests, errors_5xx, latency_ms_sum,        |
//! |                                  |        | `ws:<r>` → open WebSockets; TTL'd 1 h        |
//! | `<p>:lock:<name>`                | string | lock token; TTL'd (`janitor` lock is          |
//! |                                  |        | `<p>:janitor:lock` for pulse-railway compat) |
//! | `<p>:events`                     | pubsub | change and reload notifications (JSON)       |
//! | `<p>:meta:<name>`                | string | a document one program publishes (JSON)      |
//! | `<p>:journal`                    | list   | what happened, newest first (JSON), capped   |
//! |                                  |        | at `JOURNAL_LEN`                             |

/// Every key shape after the prefix: a name, or a name ending in `:` that
/// an id or name follows.
pub const SCHEMA: &[&str] = &[
    ":active",
    ":deployment:",
    ":deployments",
    ":services",
    ":version",
    ":rollout",
    ":replicas",
    ":replica:",
    ":stats:",
    ":lock:",
    ":janitor:lock",
    ":events",
    ":meta:",
    ":journal",
];

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

    pub fn journal(&self) -> String {
        format!("{}:journal", self.prefix)
    }

    pub fn lock(&self, name: &str) -> String {
        if name == "janitor" {
            format!("{}:janitor:lock", self.prefix)
        } else {
            format!("{}:lock:{name}", self.prefix)
        }
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    fn in_schema(suffix: &str) -> bool {
        SCHEMA
            .iter()
            .any(|s| suffix == *s || (s.ends_with(':') && suffix.starts_with(s)))
    }

    #[test]
    fn every_key_the_store_names_is_in_the_schema() {
        let k = Keys::new("p");
        for key in [
            k.active(),
            k.deployment("v1"),
            k.events(),
            k.replica("r1"),
            k.replicas(),
            k.meta("policy"),
            k.lock("janitor"),
            k.lock("other"),
            k.journal(),
        ] {
            let suffix = key.strip_prefix('p').unwrap_or_default();
            assert!(in_schema(suffix), "{key} is not in keys::SCHEMA");
        }
    }

    #[test]
    fn every_key_a_lua_script_names_is_in_the_schema() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lua");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("src/lua") {
            let path = entry.expect("lua entry").path();
            let text = std::fs::read_to_string(&path).expect("lua file");
            // Keys are built as `prefix .. ':name'`.
            for piece in text.split("prefix .. '").skip(1) {
                let suffix = piece.split('\'').next().unwrap_or_default();
                assert!(
                    in_schema(suffix),
                    "{}: key `<prefix>{suffix}` is not in keys::SCHEMA",
                    path.display()
                );
                seen += 1;
            }
        }
        assert!(seen > 10, "found only {seen} keys in the scripts");
    }
}
