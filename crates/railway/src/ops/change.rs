//! The mutations: what Switchyard changes on Railway.

use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::{Client, RailwayError};

impl Client {
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
