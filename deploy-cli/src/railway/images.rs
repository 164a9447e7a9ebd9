//! The router and janitor images `init` and `upgrade` run when none is
//! given: the ones this version's release publishes. A release exists only
//! once a `v<version>` tag was pushed, so before defaulting to them the CLI
//! asks the registry, as `docker pull` would (OCI distribution spec: an
//! anonymous pull token, then `HEAD` on the manifest), and otherwise stops
//! with the recipe to build and push your own.

use std::time::Duration;

use crate::{Failure, usage};

const REGISTRY: &str = "ghcr.io";
const NAMESPACE: &str = "switchyard";

/// `ghcr.io/switchyard/switchyard-<program>:<this version>`.
pub fn default_image(program: &str) -> String {
    format!(
        "{REGISTRY}/{NAMESPACE}/switchyard-{program}:{}",
        env!("CARGO_PKG_VERSION")
    )
}

enum Published {
    Yes,
    No,
    Unknown(String),
}

/// Fails with the build-and-push recipe unless every defaulted image is
/// published. `defaulted` lists the programs whose image was not given.
pub async fn check_defaults(defaulted: &[&str]) -> Result<(), Failure> {
    for program in defaulted {
        let image = default_image(program);
        let why = match published(program).await {
            Published::Yes => continue,
            Published::No => format!(
                "{image} is not published (no v{} release of Switchyard exists yet)",
                env!("CARGO_PKG_VERSION")
            ),
            Published::Unknown(e) => format!("could not check that {image} exists ({e})"),
        };
        return Err(usage(format!("{why}.\n{}", recipe())));
    }
    Ok(())
}

/// How to build and push the two images from this checkout and hand them
/// to `init` or `upgrade`.
pub fn recipe() -> String {
    let v = env!("CARGO_PKG_VERSION");
    format!(
        "Build and push your own from a checkout of this repository (any registry Railway can pull from; a private one needs its credentials on the service):\n\
         \x20 docker buildx build --platform linux/amd64 -f docker/router.Dockerfile -t REGISTRY/switchyard-router:{v} --push .\n\
         \x20 docker buildx build --platform linux/amd64 -f docker/janitor.Dockerfile -t REGISTRY/switchyard-janitor:{v} --push .\n\
         then pass them: --router-image REGISTRY/switchyard-router:{v} --janitor-image REGISTRY/switchyard-janitor:{v}\n\
         (or SWITCHYARD_ROUTER_IMAGE and SWITCHYARD_JANITOR_IMAGE, or router_image and janitor_image in switchyard.toml)"
    )
}

async fn published(program: &str) -> Published {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => return Published::Unknown(e.to_string()),
    };
    let repository = format!("{NAMESPACE}/switchyard-{program}");
    let token_url =
        format!("https://{REGISTRY}/token?scope=repository:{repository}:pull&service={REGISTRY}");
    let token = match client.get(&token_url).send().await {
        // An unknown repository is refused a pull token.
        Ok(res) if matches!(res.status().as_u16(), 401 | 403 | 404) => return Published::No,
        Ok(res) if !res.status().is_success() => {
            return Published::Unknown(format!("{REGISTRY} answered {}", res.status()));
        }
        Ok(res) => match res.json::<serde_json::Value>().await {
            Ok(body) => body["token"].as_str().unwrap_or_default().to_string(),
            Err(e) => return Published::Unknown(e.to_string()),
        },
        Err(e) => return Published::Unknown(reqwest_reason(&e)),
    };
    let manifest = format!(
        "https://{REGISTRY}/v2/{repository}/manifests/{}",
        env!("CARGO_PKG_VERSION")
    );
    let accept = "application/vnd.oci.image.index.v1+json, \
                  application/vnd.oci.image.manifest.v1+json, \
                  application/vnd.docker.distribution.manifest.list.v2+json, \
                  application/vnd.docker.distribution.manifest.v2+json";
    match client
        .head(&manifest)
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, accept)
        .send()
        .await
    {
        Ok(res) if res.status().is_success() => Published::Yes,
        Ok(res) if matches!(res.status().as_u16(), 401 | 403 | 404) => Published::No,
        Ok(res) => Published::Unknown(format!("{REGISTRY} answered {}", res.status())),
        Err(e) => Published::Unknown(reqwest_reason(&e)),
    }
}

/// The innermost cause: "dns error: failed to lookup address" says more
/// than "error sending request for url".
fn reqwest_reason(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    format!("{REGISTRY} unreachable: {source}")
}
