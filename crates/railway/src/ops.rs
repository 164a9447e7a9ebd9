//! The operations Switchyard sends, and typed calls for each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Client, RailwayError};

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
        $(pub static $ident: Operation = Operation { name: $name, query: include_str!(concat!("gql/", $file)), repeatable: $repeatable };)*
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

impl Client {
    pub async fn project(&self, id: &str) -> Result<Project, RailwayError> {
        #[derive(Deserialize)]
        struct Raw {
            id: String,
            name: String,
            environments: Edges<Named>,
            services: Edges<Named>,
        }
        #[derive(Deserialize)]
        struct Data {
            project: Raw,
        }
        let d: Data = self.request(&PROJECT, &json!({ "id": id })).await?;
        Ok(Project {
            id: d.project.id,
            name: d.project.name,
            environments: d
                .project
                .environments
                .edges
                .into_iter()
                .map(|e| e.node)
                .collect(),
            services: d
                .project
                .services
                .edges
                .into_iter()
                .map(|e| e.node)
                .collect(),
        })
    }

    pub async fn deployment(&self, id: &str) -> Result<Deployment, RailwayError> {
        #[derive(Deserialize)]
        struct Data {
            deployment: Deployment,
        }
        Ok(self
            .request::<_, Data>(&DEPLOYMENT, &json!({ "id": id }))
            .await?
            .deployment)
    }

    /// Rendered variables of a service (or of the shared scope when `service_id` is `None`).
    pub async fn variables(
        &self,
        project_id: &str,
        environment_id: &str,
        service_id: Option<&str>,
    ) -> Result<BTreeMap<String, String>, RailwayError> {
        self.variables_as(project_id, environment_id, service_id, false)
            .await
    }

    /// Variables as written, references like `${{svc.VAR}}` unexpanded: what
    /// to compare against what Switchyard sets.
    pub async fn raw_variables(
        &self,
        project_id: &str,
        environment_id: &str,
        service_id: Option<&str>,
    ) -> Result<BTreeMap<String, String>, RailwayError> {
        self.variables_as(project_id, environment_id, service_id, true)
            .await
    }

    async fn variables_as(
        &self,
        project_id: &str,
        environment_id: &str,
        service_id: Option<&str>,
        unrendered: bool,
    ) -> Result<BTreeMap<String, String>, RailwayError> {
        #[derive(Deserialize)]
        struct Data {
            variables: BTreeMap<String, String>,
        }
        let vars = json!({ "projectId": project_id, "environmentId": environment_id, "serviceId": service_id, "unrendered": unrendered });
        Ok(self.request::<_, Data>(&VARIABLES, &vars).await?.variables)
    }

    /// A service's settings in one environment: source, start command,
    /// health check, restart policy, overlap, cron and its Railway domains.
    pub async fn service_instance(
        &self,
        service_id: &str,
        environment_id: &str,
    ) -> Result<ServiceInstance, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            service_instance: ServiceInstance,
        }
        let vars = json!({ "serviceId": service_id, "environmentId": environment_id });
        Ok(self
            .request::<_, Data>(&SERVICE_INSTANCE, &vars)
            .await?
            .service_instance)
    }

    /// Deletes a service; a service that is already gone counts as deleted.
    pub async fn service_delete(
        &self,
        service_id: &str,
        environment_id: Option<&str>,
    ) -> Result<(), RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            #[allow(dead_code)]
            service_delete: bool,
        }
        match self
            .request::<_, Data>(
                &SERVICE_DELETE,
                &json!({ "id": service_id, "environmentId": environment_id }),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates a service from an image or a repository (and its branch).
    pub async fn service_create(
        &self,
        project_id: &str,
        environment_id: &str,
        name: &str,
        source: Option<&Source>,
        branch: Option<&str>,
    ) -> Result<Named, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            service_create: Named,
        }
        let mut input =
            json!({ "projectId": project_id, "environmentId": environment_id, "name": name });
        if let Some(source) = source {
            input["source"] = serde_json::to_value(source).unwrap_or_default();
        }
        if let Some(branch) = branch {
            input["branch"] = json!(branch);
        }
        Ok(self
            .request::<_, Data>(&SERVICE_CREATE, &json!({ "input": input }))
            .await?
            .service_create)
    }

    /// Sets variables on a service (or the shared scope), replacing nothing else.
    pub async fn upsert_variables(
        &self,
        project_id: &str,
        environment_id: &str,
        service_id: Option<&str>,
        variables: &BTreeMap<String, String>,
        skip_deploys: bool,
    ) -> Result<(), RailwayError> {
        // A login token lives for a person's session: a service holding it
        // would stop working when it expires, and would act as that person.
        if let crate::Auth::User(token) = &self.settings().auth
            && let Some(name) = variables
                .iter()
                .find_map(|(k, v)| v.contains(token.as_str()).then_some(k))
        {
            return Err(RailwayError::Refused(format!(
                "{name} would hold the Railway CLI's login token; runtime services need a project or account token (RAILWAY_TOKEN or RAILWAY_API_TOKEN)"
            )));
        }
        let input = json!({
            "projectId": project_id,
            "environmentId": environment_id,
            "serviceId": service_id,
            "variables": variables,
            "skipDeploys": skip_deploys,
        });
        self.request::<_, serde_json::Value>(
            &VARIABLE_COLLECTION_UPSERT,
            &json!({ "input": input }),
        )
        .await?;
        Ok(())
    }

    pub async fn service_instance_update(
        &self,
        service_id: &str,
        environment_id: &str,
        input: &serde_json::Value,
    ) -> Result<(), RailwayError> {
        let vars =
            json!({ "serviceId": service_id, "environmentId": environment_id, "input": input });
        self.request::<_, serde_json::Value>(&SERVICE_INSTANCE_UPDATE, &vars)
            .await?;
        Ok(())
    }

    /// Starts a deployment of the service; returns the Railway deployment id.
    pub async fn deploy(
        &self,
        service_id: &str,
        environment_id: &str,
    ) -> Result<String, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            service_instance_deploy_v2: String,
        }
        let vars = json!({ "serviceId": service_id, "environmentId": environment_id });
        Ok(self
            .request::<_, Data>(&SERVICE_INSTANCE_DEPLOY, &vars)
            .await?
            .service_instance_deploy_v2)
    }

    /// Redeploys the service's latest deployment without a new build (to
    /// pick up changed variables, say).
    pub async fn redeploy(
        &self,
        service_id: &str,
        environment_id: &str,
    ) -> Result<(), RailwayError> {
        let vars = json!({ "serviceId": service_id, "environmentId": environment_id });
        self.request::<_, serde_json::Value>(&SERVICE_INSTANCE_REDEPLOY, &vars)
            .await?;
        Ok(())
    }

    /// The id and status of the service's latest deployment, if any.
    pub async fn latest_deployment(
        &self,
        service_id: &str,
        environment_id: &str,
    ) -> Result<Option<(String, String)>, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            service_instance: Instance,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Instance {
            latest_deployment: Option<Latest>,
        }
        #[derive(Deserialize)]
        struct Latest {
            id: String,
            status: String,
        }
        let vars = json!({ "serviceId": service_id, "environmentId": environment_id });
        Ok(self
            .request::<_, Data>(&LATEST_DEPLOYMENT, &vars)
            .await?
            .service_instance
            .latest_deployment
            .map(|l| (l.id, l.status)))
    }

    pub async fn service_domain_create(
        &self,
        service_id: &str,
        environment_id: &str,
        target_port: u16,
    ) -> Result<String, RailwayError> {
        #[derive(Deserialize)]
        struct Domain {
            domain: String,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            service_domain_create: Domain,
        }
        let input = json!({ "serviceId": service_id, "environmentId": environment_id, "targetPort": target_port });
        Ok(self
            .request::<_, Data>(&SERVICE_DOMAIN_CREATE, &json!({ "input": input }))
            .await?
            .service_domain_create
            .domain)
    }

    pub async fn project_create(
        &self,
        name: &str,
        workspace_id: &str,
    ) -> Result<Project, RailwayError> {
        #[derive(Deserialize)]
        struct Raw {
            id: String,
            name: String,
            environments: Edges<Named>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            project_create: Raw,
        }
        let d: Data = self
            .request(
                &PROJECT_CREATE,
                &json!({ "input": { "name": name, "workspaceId": workspace_id } }),
            )
            .await?;
        Ok(Project {
            id: d.project_create.id,
            name: d.project_create.name,
            environments: d
                .project_create
                .environments
                .edges
                .into_iter()
                .map(|e| e.node)
                .collect(),
            services: Vec::new(),
        })
    }

    /// Attaches a volume to a service at `mount_path`.
    pub async fn volume_create(
        &self,
        project_id: &str,
        environment_id: &str,
        service_id: &str,
        mount_path: &str,
    ) -> Result<String, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            volume_create: Named,
        }
        let input = json!({ "projectId": project_id, "environmentId": environment_id, "serviceId": service_id, "mountPath": mount_path });
        Ok(self
            .request::<_, Data>(&VOLUME_CREATE, &json!({ "input": input }))
            .await?
            .volume_create
            .id)
    }

    /// Exposes a service's TCP port publicly; returns `host:port`.
    pub async fn tcp_proxy_create(
        &self,
        environment_id: &str,
        service_id: &str,
        application_port: u16,
    ) -> Result<String, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Proxy {
            domain: String,
            proxy_port: u16,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            tcp_proxy_create: Proxy,
        }
        let input = json!({ "environmentId": environment_id, "serviceId": service_id, "applicationPort": application_port });
        let p = self
            .request::<_, Data>(&TCP_PROXY_CREATE, &json!({ "input": input }))
            .await?
            .tcp_proxy_create;
        Ok(format!("{}:{}", p.domain, p.proxy_port))
    }

    /// Mints a project token (sent as `Project-Access-Token`).
    pub async fn project_token_create(
        &self,
        project_id: &str,
        environment_id: &str,
        name: &str,
    ) -> Result<String, RailwayError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Data {
            project_token_create: String,
        }
        let input =
            json!({ "projectId": project_id, "environmentId": environment_id, "name": name });
        Ok(self
            .request::<_, Data>(&PROJECT_TOKEN_CREATE, &json!({ "input": input }))
            .await?
            .project_token_create)
    }
}
