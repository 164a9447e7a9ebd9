//! `switchyard-janitor`: the retention crate's run, with the one thing a
//! router's janitor never has: Railway's API client and its token.

pub use switchyard_retention::*;

use std::sync::Arc;

use switchyard_core::config::{ConfigError, EnvSource, Resolver};
use switchyard_platform::SharedPlatform;
use switchyard_railway::{ClientSettings, RailwayPlatform};

/// Every setting the janitor program reads: the retention rules' and the
/// Railway API's.
pub fn all_settings() -> Vec<&'static dyn switchyard_core::config::Declared> {
    [config::settings::ALL, switchyard_railway::settings::ALL].concat()
}

/// Where the stack lives on Railway, and how to reach the API.
#[derive(Debug, Clone)]
pub struct RailwayTarget {
    pub client: ClientSettings,
    pub project_id: String,
    pub environment_id: String,
}

impl RailwayTarget {
    /// The token, project and environment the railway platform needs.
    pub fn resolve(src: &dyn EnvSource) -> Result<Self, ConfigError> {
        use config::settings::{ENVIRONMENT_ID, PROJECT_ID};
        let r = Resolver::new(src);
        Ok(Self {
            client: ClientSettings::from_env(src).ok_or_else(|| {
                ConfigError::missing(
                    &switchyard_railway::settings::API_TOKEN,
                    "the railway platform deletes services through Railway's API; set a project \
                     token (RAILWAY_TOKEN) or an account token (RAILWAY_API_TOKEN), or pass --platform static",
                )
            })?,
            project_id: r.required(
                &PROJECT_ID,
                "Railway sets it in every service; elsewhere pass --project-id",
            )?,
            environment_id: r.required(
                &ENVIRONMENT_ID,
                "Railway sets it in every service; elsewhere pass --environment-id",
            )?,
        })
    }
}

/// The platform the cron janitor acts on: Railway through its API (the
/// target resolved with [`RailwayTarget::resolve`]), or the static
/// platform.
pub fn platform_for(
    config: &JanitorConfig,
    railway: Option<RailwayTarget>,
) -> Result<SharedPlatform, String> {
    match (config.platform, railway) {
        (PlatformKind::Static, _) => Ok(store_only_platform(config)),
        (PlatformKind::Railway, None) => {
            Err("the railway platform needs its target (token, project, environment)".into())
        }
        (PlatformKind::Railway, Some(target)) => {
            let client =
                switchyard_railway::Client::new(target.client).map_err(|e| e.to_string())?;
            Ok(Arc::new(RailwayPlatform::new(
                client,
                &target.project_id,
                &target.environment_id,
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Env(HashMap<&'static str, &'static str>);

    impl EnvSource for Env {
        fn var(&self, key: &str) -> Option<String> {
            self.0.get(key).map(|v| v.to_string())
        }
    }

    #[test]
    fn the_settings_page_is_what_the_declarations_say() {
        switchyard_core::config::settings_page("switchyard-janitor", &all_settings())
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn the_railway_target_comes_from_railways_variables_and_needs_a_token() {
        let env = Env(HashMap::from([
            ("RAILWAY_PROJECT_ID", "p1"),
            ("RAILWAY_ENVIRONMENT_ID", "e1"),
            ("RAILWAY_TOKEN", "t"),
        ]));
        let target = RailwayTarget::resolve(&env).map_err(|e| e.to_string());
        let target = target
            .as_ref()
            .map(|t| (t.project_id.as_str(), t.environment_id.as_str()));
        assert_eq!(target, Ok(("p1", "e1")));
        let no_token = Env(HashMap::from([("RAILWAY_PROJECT_ID", "p1")]));
        let err = RailwayTarget::resolve(&no_token)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("RAILWAY_TOKEN") && err.contains("--platform static"),
            "{err}"
        );
    }
}
