//! Local image builds: `docker buildx build --push` to the user's registry,
//! then Railway runs the pushed image. For teams whose registry, build
//! secrets or build cache live on their own machines or CI.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
};

use crate::Failure;

/// Which `docker` to run; tests put a recording script first on `PATH`.
const DOCKER: &str = "docker";

/// Fails, saying what to install, unless `docker` and its `buildx` plugin
/// both answer. Runs before anything is created.
pub async fn check_tools() -> Result<(), Failure> {
    let out = tokio::process::Command::new(DOCKER)
        .args(["buildx", "version"])
        .stdin(Stdio::null())
        .output()
        .await;
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(anyhow::anyhow!(
            "--image-repository builds the image locally, but `docker` is not on PATH: install Docker (https://docs.docker.com/engine/install/) or deploy without --image-repository to let Railway build the source; nothing was created"
        )
        .into()),
        Err(e) => Err(anyhow::anyhow!("cannot run docker: {e}; nothing was created").into()),
        Ok(out) if !out.status.success() => Err(anyhow::anyhow!(
            "`docker buildx version` failed ({}): install the buildx plugin (Debian/Ubuntu: apt-get install docker-buildx-plugin; see https://docs.docker.com/build/install-buildx/); nothing was created",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into()),
        Ok(_) => Ok(()),
    }
}

#[derive(Debug, Clone)]
pub struct BuildSpec {
    pub context: PathBuf,
    pub dockerfile: Option<PathBuf>,
    /// `REPOSITORY:TAG`, the tag being the deployment id.
    pub tag: String,
}

impl BuildSpec {
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "buildx",
            "build",
            "--push",
            // Railway runs linux/amd64, whatever the building machine is.
            "--platform",
            "linux/amd64",
            "-t",
        ]
        .map(String::from)
        .into();
        args.push(self.tag.clone());
        if let Some(df) = &self.dockerfile {
            args.push("-f".into());
            args.push(df.display().to_string());
        }
        args.push(self.context.display().to_string());
        args
    }
}

/// Builds and pushes, streaming docker's output to the terminal (to stderr
/// when stdout carries `--json`).
pub async fn build_and_push(spec: &BuildSpec, json: bool) -> Result<(), Failure> {
    if !Path::new(&spec.context).is_dir() {
        return Err(anyhow::anyhow!(
            "build context {} is not a directory; nothing was created",
            spec.context.display()
        )
        .into());
    }
    let stdout = if json {
        Stdio::from(std::io::stderr())
    } else {
        Stdio::inherit()
    };
    let status = tokio::process::Command::new(DOCKER)
        .args(spec.args())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .status()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run docker: {e}"))?;
    if !status.success() {
        return Err(anyhow::anyhow!(
            "`docker {}` failed ({status}); nothing was created on Railway",
            spec.args().join(" ")
        )
        .into());
    }
    Ok(())
}
