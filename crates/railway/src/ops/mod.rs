//! The operations Switchyard sends, and typed calls for each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod change;
mod read;

/// One GraphQL operation, as sent.
#[derive(Debug)]
pub struct Operation {
    pub name: &'static str,
    pub query: &'static str,
    /// Safe to send again after a transient failure: a read, or a change
    /// whose repetition has the same effect.
    pub repeatable: bool,
}

macro_rules! operations {
    ($($ident:ident = ($name:literal, $file:literal, $repeatable:literal);)*) => {
        $(pub static $ident: Operation = Operation { name: $name, query: include_str!(concat!("../gql/", $file)), repeatable: $repeatable };)*
        /// Every operation the client can send (the schema test checks each).
        pub static OPERATIONS: &[&Operation] = &[$(&$ident),*];
    };
}

operations! {
    PROJECT = ("Project", "project.graphql", true);
    DEPLOYMENT = ("Deployment", "deployment.graphql", true);
    VARIABLES = ("Variables", "variables.graphql", true);
    SERVICE_DELETE = ("ServiceDelete", "service_delete.graphql", true);
    VARIABLE_COLLECTION_UPSERT = ("VariableCollectionUpsert", "variable_collection_upsert.graphql", true);
    SERVICE_INSTANCE_UPDATE = ("ServiceInstanceUpdate", "service_instance_update.graphql", true);
    SERVICE_CREATE = ("ServiceCreate", "service_create.graphql", false);
    SERVICE_INSTANCE_DEPLOY = ("ServiceInstanceDeployV2", "service_instance_deploy.graphql", false);
    SERVICE_DOMAIN_CREATE = ("ServiceDomainCreate", "service_domain_create.graphql", false);
    PROJECT_CREATE = ("ProjectCreate", "project_create.graphql", false);
    VOLUME_CREATE = ("VolumeCreate", "volume_create.graphql", false);
    TCP_PROXY_CREATE = ("TcpProxyCreate", "tcp_proxy_create.graphql", false);
    PROJECT_TOKEN_CREATE = ("ProjectTokenCreate", "project_token_create.graphql", false);
    SERVICE_INSTANCE = ("ServiceInstance", "service_instance.graphql", true);
    SERVICE_INSTANCE_REDEPLOY = ("ServiceInstanceRedeploy", "service_instance_redeploy.graphql", false);
    LATEST_DEPLOYMENT = ("LatestDeployment", "latest_deployment.graphql", true);
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Named {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Edges<T> {
    edges: Vec<Edge<T>>,
}

#[derive(Debug, Clone, Deserialize)]
struct Edge<T> {
    node: T,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub environments: Vec<Named>,
    pub services: Vec<Named>,
}

impl Project {
    pub fn service(&self, name: &str) -> Option<&Named> {
        self.services.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub static_url: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

impl Deployment {
    /// Railway's terminal failure states.
    pub fn failed(&self) -> bool {
        matches!(self.status.as_str(), "FAILED" | "CRASHED" | "REMOVED")
    }

    pub fn succeeded(&self) -> bool {
        self.status == "SUCCESS"
    }
}

/// The settings of a service that Switchyard manages.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstance {
    pub service_name: String,
    pub start_command: Option<String>,
    pub cron_schedule: Option<String>,
    pub healthcheck_path: Option<String>,
    pub healthcheck_timeout: Option<i64>,
    pub restart_policy_type: Option<String>,
    pub restart_policy_max_retries: Option<i64>,
    pub overlap_seconds: Option<i64>,
    pub draining_seconds: Option<i64>,
    pub source: Option<ServiceSource>,
    pub domains: Option<Domains>,
}

impl ServiceInstance {
    pub fn image(&self) -> Option<&str> {
        self.source.as_ref()?.image.as_deref()
    }

    pub fn service_domains(&self) -> &[ServiceDomain] {
        self.domains
            .as_ref()
            .map_or(&[], |d| d.service_domains.as_slice())
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct ServiceSource {
    pub image: Option<String>,
    pub repo: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Domains {
    #[serde(default)]
    pub service_domains: Vec<ServiceDomain>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDomain {
    pub domain: String,
    pub target_port: Option<u16>,
}

/// Where a new service's code comes from.
#[derive(Debug, Clone, Serialize)]
pub enum Source {
    #[serde(rename = "image")]
    Image(String),
    #[serde(rename = "repo")]
    Repo(String),
}
