//! Deployments as Railway services: deleting one is `serviceDelete`.

use async_trait::async_trait;
use switchyard_core::Deployment;
use switchyard_platform::{Platform, PlatformError};

use crate::{Client, RailwayError};

#[derive(Debug, Clone)]
pub struct RailwayPlatform {
    client: Client,
    project_id: String,
    environment_id: String,
}

impl RailwayPlatform {
    pub fn new(
        client: Client,
        project_id: impl Into<String>,
        environment_id: impl Into<String>,
    ) -> Self {
        Self {
            client,
            project_id: project_id.into(),
            environment_id: environment_id.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    pub fn environment_id(&self) -> &str {
        &self.environment_id
    }
}

fn classify(e: RailwayError) -> PlatformError {
    if e.is_transient() {
        PlatformError::Transient(e.to_string())
    } else {
        PlatformError::Permanent(e.to_string())
    }
}

#[async_trait]
impl Platform for RailwayPlatform {
    fn name(&self) -> &'static str {
        "railway"
    }

    async fn delete_service(&self, d: &Deployment) -> Result<(), PlatformError> {
        // Records written by pulse-railway carry only the service name.
        let id = match &d.service_id {
            Some(id) => id.clone(),
            None => match self
                .client
                .project(&self.project_id)
                .await
                .map_err(classify)?
                .service(&d.service_name)
            {
                Some(s) => s.id.clone(),
                None => return Ok(()), // no such service: nothing left to delete
            },
        };
        self.client
            .service_delete(&id, Some(&self.environment_id))
            .await
            .map_err(classify)
    }
}
