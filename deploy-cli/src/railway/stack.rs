//! The stack Switchyard runs in a Railway project, as data: for each of its
//! services the image, the settings, the variables it manages and whether
//! it has a domain. `init` applies it to an empty project; `upgrade` reads
//! what a project has, plans the difference and applies only that. One
//! description, one apply path: what `init` makes is what `upgrade` checks.
//!
//! Backend deployments, user variables and the Redis service's data are
//! not part of the stack and are never read or changed here.

use std::{collections::BTreeMap, fmt};

use serde_json::{Value, json};
use switchyard_railway::RailwayPlatform;
use switchyard_railway::{
    RailwayError,
    ops::{Project, ServiceInstance, Source},
};

pub const ROUTER: &str = "pulse-router";
pub const REDIS: &str = "pulse-redis";
pub const JANITOR: &str = "pulse-janitor";
pub const ENV: &str = "pulse-env";
/// The router listens here inside Railway; its domain targets it.
pub const ROUTER_PORT: u16 = 8000;
pub const JANITOR_CRON: &str = "*/5 * * * *";

/// How long Railway keeps an old router replica beside its replacement and
/// lets it drain: the router's shutdown deadline plus a margin, so an
/// update of the router finishes in-flight requests instead of cutting them.
pub fn overlap_seconds() -> u64 {
    switchyard_router::RouterConfig::default()
        .limits
        .shutdown_timeout
        .as_secs()
        + 5
}

pub fn reference(service: &str, var: &str) -> String {
    format!("${{{{{service}.{var}}}}}")
}

/// A value Switchyard makes up once and never replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generated {
    /// 128 random bits, hex.
    Secret,
    /// A project token minted for the janitor.
    JanitorToken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// Exactly this value.
    Is(String),
    /// Any value will do; generate one when absent.
    Present(Generated),
}

#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub name: String,
    /// `None` for a service that only holds variables.
    pub image: Option<String>,
    /// `ServiceInstanceUpdateInput` fields and their values.
    pub settings: BTreeMap<&'static str, Value>,
    pub variables: BTreeMap<String, Want>,
    /// A Railway domain targeting this port.
    pub domain_port: Option<u16>,
}

#[derive(Debug, Clone)]
pub struct Wanted {
    pub router_image: String,
    pub janitor_image: String,
    pub env_service: String,
    /// The value of `REDIS_URL` for router and janitor: a reference to the
    /// Redis service, an external URL, or `None` to leave it as it is.
    pub redis_url: Option<String>,
}

/// Env service first: the others reference its internal token.
pub fn desired(w: &Wanted) -> Vec<ServiceSpec> {
    let overlap = overlap_seconds();
    let mut router_vars = BTreeMap::from([
        ("PORT".to_string(), Want::Is(ROUTER_PORT.to_string())),
        ("SWITCHYARD_LOG_FORMAT".to_string(), Want::Is("json".into())),
    ]);
    let mut janitor_vars = BTreeMap::from([
        (
            "PULSE_RAILWAY_INTERNAL_TOKEN".to_string(),
            Want::Is(reference(&w.env_service, "PULSE_RAILWAY_INTERNAL_TOKEN")),
        ),
        (
            "RAILWAY_TOKEN".to_string(),
            Want::Present(Generated::JanitorToken),
        ),
        ("SWITCHYARD_LOG_FORMAT".to_string(), Want::Is("json".into())),
    ]);
    if let Some(url) = &w.redis_url {
        router_vars.insert("REDIS_URL".into(), Want::Is(url.clone()));
        janitor_vars.insert("REDIS_URL".into(), Want::Is(url.clone()));
    }
    vec![
        ServiceSpec {
            name: w.env_service.clone(),
            image: None,
            settings: BTreeMap::new(),
            variables: BTreeMap::from([(
                "PULSE_RAILWAY_INTERNAL_TOKEN".to_string(),
                Want::Present(Generated::Secret),
            )]),
            domain_port: None,
        },
        ServiceSpec {
            name: ROUTER.into(),
            image: Some(w.router_image.clone()),
            settings: BTreeMap::from([
                ("startCommand", json!("/usr/local/bin/switchyard-router")),
                ("healthcheckPath", json!("/healthz")),
                ("healthcheckTimeout", json!(30)),
                ("restartPolicyType", json!("ON_FAILURE")),
                ("restartPolicyMaxRetries", json!(10)),
                ("overlapSeconds", json!(overlap)),
                ("drainingSeconds", json!(overlap)),
            ]),
            variables: router_vars,
            domain_port: Some(ROUTER_PORT),
        },
        ServiceSpec {
            name: JANITOR.into(),
            image: Some(w.janitor_image.clone()),
            settings: BTreeMap::from([
                ("startCommand", json!("/usr/local/bin/switchyard-janitor")),
                ("cronSchedule", json!(JANITOR_CRON)),
                ("restartPolicyType", json!("NEVER")),
            ]),
            variables: janitor_vars,
            domain_port: None,
        },
    ]
}

/// A stack service as it is in the project.
#[derive(Debug, Clone)]
pub struct Existing {
    pub id: String,
    pub instance: ServiceInstance,
    /// Unrendered: references stay `${{…}}`.
    pub variables: BTreeMap<String, String>,
}

impl Existing {
    fn setting(&self, key: &str) -> Value {
        let i = &self.instance;
        match key {
            "startCommand" => json!(i.start_command),
            "cronSchedule" => json!(i.cron_schedule),
            "healthcheckPath" => json!(i.healthcheck_path),
            "healthcheckTimeout" => json!(i.healthcheck_timeout),
            "restartPolicyType" => json!(i.restart_policy_type),
            "restartPolicyMaxRetries" => json!(i.restart_policy_max_retries),
            "overlapSeconds" => json!(i.overlap_seconds),
            "drainingSeconds" => json!(i.draining_seconds),
            _ => Value::Null,
        }
    }
}

/// Reads each stack service `project` has (by name).
pub async fn read(
    rp: &RailwayPlatform,
    project: &Project,
    specs: &[ServiceSpec],
) -> Result<BTreeMap<String, Existing>, RailwayError> {
    let client = rp.client();
    let mut found = BTreeMap::new();
    for spec in specs {
        let Some(service) = project.service(&spec.name) else {
            continue;
        };
        let instance = client
            .service_instance(&service.id, rp.environment_id())
            .await?;
        let variables = client
            .raw_variables(rp.project_id(), rp.environment_id(), Some(&service.id))
            .await?;
        found.insert(
            spec.name.clone(),
            Existing {
                id: service.id.clone(),
                instance,
                variables,
            },
        );
    }
    Ok(found)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Create,
    Image {
        from: Option<String>,
        to: String,
    },
    Setting {
        key: &'static str,
        from: Value,
        to: Value,
    },
    Variable {
        key: String,
        from: Option<String>,
        to: Want,
    },
    Domain {
        port: u16,
    },
}

#[derive(Debug, Clone)]
pub struct ServicePlan {
    pub spec: ServiceSpec,
    /// Set when the service exists.
    pub id: Option<String>,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub services: Vec<ServicePlan>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.services.iter().all(|s| s.changes.is_empty())
    }

    pub fn len(&self) -> usize {
        self.services.iter().map(|s| s.changes.len()).sum()
    }
}

/// What must change for `existing` to be `specs`.
pub fn plan(specs: &[ServiceSpec], existing: &BTreeMap<String, Existing>) -> Plan {
    let mut services = Vec::new();
    for spec in specs {
        let current = existing.get(&spec.name);
        let mut changes = Vec::new();
        if current.is_none() {
            changes.push(Change::Create);
        }
        if let Some(image) = &spec.image {
            let from = current.and_then(|c| c.instance.image().map(str::to_string));
            if current.is_some() && from.as_deref() != Some(image.as_str()) {
                changes.push(Change::Image {
                    from,
                    to: image.clone(),
                });
            }
        }
        for (key, to) in &spec.settings {
            let from = current.map_or(Value::Null, |c| c.setting(key));
            if &from != to {
                changes.push(Change::Setting {
                    key,
                    from,
                    to: to.clone(),
                });
            }
        }
        for (key, want) in &spec.variables {
            let from = current.and_then(|c| c.variables.get(key)).cloned();
            let ok = match (want, &from) {
                (Want::Is(v), Some(f)) => v == f,
                (Want::Present(_), Some(f)) => !f.is_empty(),
                (_, None) => false,
            };
            if !ok {
                changes.push(Change::Variable {
                    key: key.clone(),
                    from,
                    to: want.clone(),
                });
            }
        }
        if let Some(port) = spec.domain_port
            && current.is_none_or(|c| c.instance.service_domains().is_empty())
        {
            changes.push(Change::Domain { port });
        }
        services.push(ServicePlan {
            spec: spec.clone(),
            id: current.map(|c| c.id.clone()),
            changes,
        });
    }
    Plan { services }
}

/// Hides the password of a URL with credentials.
fn shown(value: &str) -> String {
    match (value.find("://"), value.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &value[..scheme], &value[at..])
        }
        _ => value.to_string(),
    }
}

fn shown_json(v: &Value) -> String {
    match v {
        Value::Null => "(unset)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Create => write!(f, "+ create the service"),
            Self::Image { from, to } => write!(
                f,
                "~ image: {} -> {to}",
                from.as_deref().unwrap_or("(none)")
            ),
            Self::Setting { key, from, to } => write!(
                f,
                "{} {key}: {} -> {}",
                if from.is_null() { '+' } else { '~' },
                shown_json(from),
                shown_json(to)
            ),
            Self::Variable { key, from, to } => {
                let to = match to {
                    Want::Is(v) => shown(v),
                    Want::Present(Generated::Secret) => "(a new secret)".into(),
                    Want::Present(Generated::JanitorToken) => "(a new project token)".into(),
                };
                match from {
                    None => write!(f, "+ variable {key} = {to}"),
                    Some(old) => write!(f, "~ variable {key}: {} -> {to}", shown(old)),
                }
            }
            Self::Domain { port } => write!(f, "+ a Railway domain for port {port}"),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in self.services.iter().filter(|s| !s.changes.is_empty()) {
            writeln!(f, "{}", s.spec.name)?;
            for c in &s.changes {
                writeln!(f, "  {c}")?;
            }
        }
        Ok(())
    }
}

impl Plan {
    pub fn to_json(&self) -> Value {
        let services: Vec<Value> = self
            .services
            .iter()
            .filter(|s| !s.changes.is_empty())
            .map(|s| {
                json!({
                    "service": s.spec.name,
                    "changes": s.changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!(services)
    }
}

/// 128 random bits as hex: passwords and tokens the stack generates.
pub fn secret() -> String {
    use rand::Rng;
    let bits: u128 = rand::rng().random();
    format!("{bits:032x}")
}

/// What applying made that the caller reports.
#[derive(Debug, Default)]
pub struct Applied {
    /// Services created, in order.
    pub created: Vec<String>,
    /// The router's Railway domain, when one was created.
    pub router_domain: Option<String>,
}

/// Applies `plan` service by service: create, variables, settings and
/// image, domain, then one redeploy of each changed service so it runs
/// what was set. `applied` records progress, so a failure can say what
/// was already done.
pub async fn apply(
    rp: &RailwayPlatform,
    plan: &Plan,
    applied: &mut Applied,
    say: &dyn Fn(&str),
) -> Result<(), RailwayError> {
    let client = rp.client();
    let (project, env) = (rp.project_id(), rp.environment_id());
    for sp in plan.services.iter().filter(|s| !s.changes.is_empty()) {
        let name = &sp.spec.name;
        let id = match &sp.id {
            Some(id) => id.clone(),
            None => {
                let source = sp.spec.image.clone().map(Source::Image);
                let created = client
                    .service_create(project, env, name, source.as_ref(), None)
                    .await?;
                applied.created.push(name.clone());
                created.id
            }
        };
        let mut variables = BTreeMap::new();
        let mut settings = serde_json::Map::new();
        let mut domain = None;
        for change in &sp.changes {
            match change {
                Change::Create => {}
                Change::Image { to, .. } => {
                    settings.insert("source".into(), json!({ "image": to }));
                }
                Change::Setting { key, to, .. } => {
                    settings.insert((*key).to_string(), to.clone());
                }
                Change::Variable { key, to, .. } => {
                    let value = match to {
                        Want::Is(v) => v.clone(),
                        Want::Present(Generated::Secret) => secret(),
                        Want::Present(Generated::JanitorToken) => {
                            client
                                .project_token_create(project, env, "switchyard-janitor")
                                .await?
                        }
                    };
                    variables.insert(key.clone(), value);
                }
                Change::Domain { port } => domain = Some(*port),
            }
        }
        if !variables.is_empty() {
            client
                .upsert_variables(project, env, Some(&id), &variables, true)
                .await?;
        }
        if !settings.is_empty() {
            client
                .service_instance_update(&id, env, &Value::Object(settings))
                .await?;
        }
        if let Some(port) = domain {
            let d = client.service_domain_create(&id, env, port).await?;
            if name == ROUTER {
                applied.router_domain = Some(d);
            }
        }
        if sp.spec.image.is_some() {
            client.deploy(&id, env).await?;
        }
        say(&format!(
            "{} {name} ({} change{})",
            if sp.id.is_some() {
                "updated"
            } else {
                "created"
            },
            sp.changes.len(),
            if sp.changes.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Wanted {
        Wanted {
            router_image: "r:2".into(),
            janitor_image: "j:2".into(),
            env_service: ENV.into(),
            redis_url: Some(reference(REDIS, "REDIS_URL")),
        }
    }

    #[test]
    fn an_empty_project_plans_every_service() {
        let plan = plan(&desired(&wanted()), &BTreeMap::new());
        let names: Vec<&str> = plan.services.iter().map(|s| s.spec.name.as_str()).collect();
        assert_eq!(names, [ENV, ROUTER, JANITOR]);
        assert!(plan.services.iter().all(|s| s.changes[0] == Change::Create));
        let text = plan.to_string();
        assert!(text.contains("+ overlapSeconds: (unset) -> 35"), "{text}");
        assert!(text.contains("+ a Railway domain for port 8000"), "{text}");
        assert!(
            text.contains("+ variable RAILWAY_TOKEN = (a new project token)"),
            "{text}"
        );
    }

    #[test]
    fn a_matching_project_plans_nothing_and_secrets_are_kept() {
        let specs = desired(&wanted());
        let mut existing = BTreeMap::new();
        for spec in &specs {
            let mut instance = ServiceInstance {
                source: spec
                    .image
                    .clone()
                    .map(|image| switchyard_railway::ops::ServiceSource {
                        image: Some(image),
                        repo: None,
                    }),
                ..Default::default()
            };
            let s = |k: &str| spec.settings.get(k).cloned();
            instance.start_command = s("startCommand").and_then(|v| v.as_str().map(String::from));
            instance.cron_schedule = s("cronSchedule").and_then(|v| v.as_str().map(String::from));
            instance.healthcheck_path =
                s("healthcheckPath").and_then(|v| v.as_str().map(String::from));
            instance.healthcheck_timeout = s("healthcheckTimeout").and_then(|v| v.as_i64());
            instance.restart_policy_type =
                s("restartPolicyType").and_then(|v| v.as_str().map(String::from));
            instance.restart_policy_max_retries =
                s("restartPolicyMaxRetries").and_then(|v| v.as_i64());
            instance.overlap_seconds = s("overlapSeconds").and_then(|v| v.as_i64());
            instance.draining_seconds = s("drainingSeconds").and_then(|v| v.as_i64());
            if spec.domain_port.is_some() {
                instance.domains = Some(switchyard_railway::ops::Domains {
                    service_domains: vec![switchyard_railway::ops::ServiceDomain {
                        domain: "x.up.railway.app".into(),
                        target_port: Some(8000),
                    }],
                });
            }
            let variables = spec
                .variables
                .iter()
                .map(|(k, w)| {
                    let v = match w {
                        Want::Is(v) => v.clone(),
                        // Whatever was generated before stays.
                        Want::Present(_) => "earlier-secret".into(),
                    };
                    (k.clone(), v)
                })
                .collect();
            existing.insert(
                spec.name.clone(),
                Existing {
                    id: format!("id-{}", spec.name),
                    instance,
                    variables,
                },
            );
        }
        let p = plan(&specs, &existing);
        assert!(p.is_empty(), "{p}");
    }

    #[test]
    fn credentials_in_urls_are_not_printed() {
        assert_eq!(
            shown("redis://default:hunter2@redis.example:6379"),
            "redis://***@redis.example:6379"
        );
        assert_eq!(
            shown("${{pulse-redis.REDIS_URL}}"),
            "${{pulse-redis.REDIS_URL}}"
        );
    }
}
