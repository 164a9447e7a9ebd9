//! The queries: what Switchyard reads from Railway.

use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::{Client, RailwayError};

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
}
