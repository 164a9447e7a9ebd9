//! The `switchyard` binary against the fake Railway API, a real Redis and
//! a real router: the stack most Railway CLI tests start from.

use std::process::{Command, Output, Stdio};

use switchyard_testkit::{Backend, FakeRailway, RedisServer};

pub struct Stack {
    pub fake: FakeRailway,
    pub redis: RedisServer,
    pub router_url: String,
    pub router: tokio::task::JoinHandle<switchyard_router::Exit>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.router.abort();
    }
}

pub async fn stack() -> Stack {
    let fake = FakeRailway::start().await;
    let redis = RedisServer::start();
    let redis_id = fake.add_service("pulse-redis");
    let env_id = fake.add_service("pulse-env");
    {
        let mut st = fake.state();
        st.next_statuses = vec!["BUILDING".into(), "DEPLOYING".into(), "SUCCESS".into()];
        for s in st.services.iter_mut() {
            if s.id == redis_id {
                s.variables.insert("REDIS_PUBLIC_URL".into(), redis.url());
                s.variables.insert(
                    "REDIS_URL".into(),
                    "redis://pulse-redis.railway.internal:6379".into(),
                );
            }
            if s.id == env_id {
                s.variables.insert("SECRET_KEY".into(), "s3cret".into());
            }
        }
    }
    let (router_url, router) = super::spawn_router(&redis.url()).await;
    Stack {
        fake,
        redis,
        router_url,
        router,
    }
}

impl Stack {
    pub async fn cli(&self, args: &[&str]) -> Output {
        self.cli_env(&[], args).await
    }

    /// The same with extra environment variables.
    pub async fn cli_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let project = self.fake.state().project_id.clone();
        let mut all = vec![
            ("RAILWAY_TOKEN", "project-token"),
            ("RAILWAY_PROJECT_ID", project.as_str()),
            ("SWITCHYARD_RAILWAY_POLL_INTERVAL", "10ms"),
            ("SWITCHYARD_RAILWAY_BACKEND_URL", "http://127.0.0.1:{port}"),
            ("SWITCHYARD_ROUTER_URL", self.router_url.as_str()),
        ];
        all.extend_from_slice(env);
        switchyard(&self.fake, &all, args).await
    }

    /// Deploys `image` as `id`, served by `backend`, and expects success.
    pub async fn deploy(&self, id: &str, image: &str, backend: &Backend) {
        let port = backend.addr.port().to_string();
        let args = [
            "deploy",
            "--image",
            image,
            "--deployment-id",
            id,
            "--port",
            &port,
            "--health-path",
            "/",
        ];
        let out = self.cli(&args).await;
        assert!(out.status.success(), "{}", text(&out));
    }

    pub async fn list(&self) -> serde_json::Value {
        let out = self.cli(&["list", "--json"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `switchyard --platform railway ARGS` against the fake, with only
/// `env` (and the fake's address) in its environment; later entries win.
pub async fn switchyard(fake: &FakeRailway, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    c.env_clear()
        .env("SWITCHYARD_RAILWAY_API", fake.api())
        .envs(env.iter().copied())
        .args(["--platform", "railway"])
        .args(args)
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// `switchyard init` with test images and an account token.
pub async fn init(fake: &FakeRailway, extra: &[&str]) -> Output {
    let project = fake.state().project_id.clone();
    let env = [
        ("RAILWAY_API_TOKEN", "account-token"),
        ("RAILWAY_PROJECT_ID", project.as_str()),
    ];
    let mut args = vec![
        "init",
        "--router-image",
        "ghcr.io/acme/switchyard-router:1",
        "--janitor-image",
        "ghcr.io/acme/switchyard-janitor:1",
    ];
    args.extend_from_slice(extra);
    switchyard(fake, &env, &args).await
}
