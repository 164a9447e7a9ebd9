//! Deploying from source on Railway: an uploaded build context Railway
//! builds, and an image built and pushed from this machine. Against the
//! fake Railway API (which unpacks what it is sent), a real Redis, a real
//! router and a real backend; `docker` is a recording script on PATH,
//! because this machine has no registry to push to.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use support::railway::{stack, text};
use switchyard_testkit::Backend;

fn temp_dir(kind: &str) -> PathBuf {
    use rand::Rng;
    let dir = std::env::temp_dir().join(format!(
        "switchyard-{kind}-{:x}",
        rand::rng().random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, body) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

/// An app as people keep it: source, ignore files, and things that must
/// never leave the machine.
fn app() -> PathBuf {
    let root = temp_dir("app");
    write(
        &root,
        &[
            ("docker/web.Dockerfile", "FROM python:3.12-slim\n"),
            ("app/main.py", "print('hello')\n"),
            ("app/__pycache__/main.cpython-312.pyc", "bytecode"),
            (".gitignore", "__pycache__/\n*.sqlite\n"),
            ("dev.sqlite", "rows"),
            (".railwayignore", "docs/\n"),
            ("docs/guide.md", "# guide"),
            (".dockerignore", "tests\n"),
            ("tests/test_main.py", "assert True"),
            (".git/HEAD", "ref: refs/heads/main"),
            ("node_modules/left-pad/index.js", "module.exports = 1"),
            (".env", "SECRET_KEY=dev"),
            (".env.production", "SECRET_KEY=prod"),
        ],
    );
    root
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_deploy_uploads_the_context_without_what_is_ignored() {
    let s = stack().await;
    let web = Backend::start("web-1").await;
    let port = web.addr.port().to_string();
    let root = app();
    let context = root.display().to_string();
    let dockerfile = root.join("docker/web.Dockerfile").display().to_string();

    let out = s
        .cli(&[
            "deploy",
            "--context",
            &context,
            "--dockerfile",
            &dockerfile,
            "--deployment-id",
            "web-1",
            "--port",
            &port,
            "--health-path",
            "/",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("packed 5 files"), "{said}");
    assert!(
        said.contains("build logs: https://railway.com/project/"),
        "{said}"
    );
    assert!(said.contains("SUCCESS"), "{said}");

    {
        let st = s.fake.state();
        assert_eq!(st.uploads.len(), 1);
        let mut files: Vec<&str> = st.uploads[0]
            .files
            .iter()
            .map(String::as_str)
            .filter(|f| !matches!(*f, "app" | "docker"))
            .collect();
        files.sort_unstable();
        assert_eq!(
            files,
            [
                ".dockerignore",
                ".gitignore",
                ".railwayignore",
                "app/main.py",
                "docker/web.Dockerfile",
            ]
        );
        let service = st
            .services
            .iter()
            .find(|svc| svc.name == "web-1" && !svc.deleted)
            .unwrap();
        assert_eq!(st.uploads[0].service_id, service.id);
        // The upload is the source: no image, no repository, the Dockerfile named.
        assert!(service.source.is_null(), "{:?}", service.source);
        assert_eq!(service.instance["dockerfilePath"], "docker/web.Dockerfile");
        assert_eq!(service.variables["PULSE_DEPLOYMENT_ID"], "web-1");
        assert_eq!(service.variables["SECRET_KEY"], "${{pulse-env.SECRET_KEY}}");
        // The upload started the build; nothing else was deployed.
        assert!(
            st.sent
                .iter()
                .all(|x| x.operation != "ServiceInstanceDeployV2")
        );
    }
    assert_eq!(s.list().await["active"], "web-1");
    std::fs::remove_dir_all(root).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_context_fails_before_anything_is_created() {
    let s = stack().await;
    let root = app();
    write(&root, &[("assets/video.mp4", &"v".repeat(8192))]);
    let context = root.display().to_string();
    let out = s
        .cli(&[
            "deploy",
            "--context",
            &context,
            "--max-context-size",
            "4KiB",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("over the 4.00 KiB limit"), "{said}");
    assert!(said.contains("assets/video.mp4"), "{said}");
    assert!(s.fake.sent("ServiceCreate").is_empty());
    assert!(s.fake.state().uploads.is_empty());

    // A context that is not there is a usage error, also before anything.
    let out = s.cli(&["deploy", "--context", "/nonexistent/app"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("/nonexistent/app"), "{}", text(&out));
    assert!(s.fake.sent("ServiceCreate").is_empty());
    std::fs::remove_dir_all(root).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_upload_deletes_the_half_made_service_and_keeps_the_active() {
    let s = stack().await;
    let web = Backend::start("web-1").await;
    s.deploy("web-1", "ghcr.io/acme/web:1", &web).await;
    let root = app();
    let context = root.display().to_string();
    s.fake
        .fail("up", switchyard_testkit::railway::Failure::Http(413), 1);
    let out = s
        .cli(&["deploy", "--context", &context, "--deployment-id", "web-2"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("larger than Railway accepts"), "{said}");
    assert!(
        said.contains("half-made service web-2 was deleted"),
        "{said}"
    );
    assert!(s.fake.live_service("web-2").is_none());
    assert_eq!(s.list().await["active"], "web-1");
    std::fs::remove_dir_all(root).ok();
}

/// A `docker` that records its arguments and answers like one with buildx,
/// or (with `buildx = false`) like one without the plugin.
fn fake_docker(buildx: bool, build_ok: bool) -> (PathBuf, PathBuf) {
    let bin = temp_dir("bin");
    let log = bin.join("docker.log");
    let script = format!(
        "#!/bin/sh\n\
         echo \"$@\" >> '{log}'\n\
         if [ \"$1 $2\" = \"buildx version\" ]; then\n\
           {version}\n\
         fi\n\
         echo \"#1 building $*\"\n\
         exit {build}\n",
        log = log.display(),
        version = if buildx {
            "echo 'github.com/docker/buildx v0.20.0'; exit 0"
        } else {
            "echo \"docker: 'buildx' is not a docker command.\" >&2; exit 1"
        },
        build = if build_ok { 0 } else { 1 },
    );
    let path = bin.join("docker");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, log)
}

fn path_with(bin: &Path) -> String {
    format!("{}:/usr/bin:/bin", bin.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_repository_builds_and_pushes_here_then_railway_runs_the_image() {
    let s = stack().await;
    let web = Backend::start("web-1").await;
    let port = web.addr.port().to_string();
    let root = app();
    let (bin, log) = fake_docker(true, true);
    let path = path_with(&bin);
    let context = root.display().to_string();

    // The repository comes from pulse-railway's variable; no flag needed.
    // The Dockerfile is found relative to the context, as Railway reads it.
    let out = s
        .cli_env(
            &[
                ("PATH", &path),
                ("PULSE_RAILWAY_IMAGE_REPOSITORY", "ghcr.io/acme/web"),
            ],
            &[
                "deploy",
                "--context",
                &context,
                "--dockerfile",
                "docker/web.Dockerfile",
                "--deployment-id",
                "web-1",
                "--port",
                &port,
                "--health-path",
                "/",
            ],
        )
        .await;
    assert!(out.status.success(), "{}", text(&out));
    // Docker's own output reached the terminal.
    assert!(text(&out).contains("#1 building"), "{}", text(&out));
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(
        calls,
        [
            "buildx version".to_string(),
            format!(
                "buildx build --push --platform linux/amd64 -t ghcr.io/acme/web:web-1 -f {context}/docker/web.Dockerfile {context}"
            ),
        ]
    );
    let service = s.fake.live_service("web-1").unwrap();
    assert_eq!(service.source["image"], "ghcr.io/acme/web:web-1");
    assert!(s.fake.state().uploads.is_empty());
    assert_eq!(s.list().await["active"], "web-1");

    // The flag beats the environment, and a tag in it is refused up front.
    let out = s
        .cli_env(
            &[
                ("PATH", &path),
                ("PULSE_RAILWAY_IMAGE_REPOSITORY", "ghcr.io/acme/web"),
            ],
            &[
                "deploy",
                "--context",
                &context,
                "--image-repository",
                "ghcr.io/acme/web:latest",
            ],
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("without a tag"), "{}", text(&out));
    std::fs::remove_dir_all(root).ok();
    std::fs::remove_dir_all(bin).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_docker_or_buildx_or_a_failed_build_creates_nothing() {
    let s = stack().await;
    let root = app();
    let context = root.display().to_string();
    let args = [
        "deploy",
        "--context",
        context.as_str(),
        "--image-repository",
        "ghcr.io/acme/web",
    ];

    let empty = temp_dir("empty-bin");
    let out = s
        .cli_env(&[("PATH", &empty.display().to_string())], &args)
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("`docker` is not on PATH"),
        "{}",
        text(&out)
    );

    let (no_buildx, _) = fake_docker(false, true);
    let out = s.cli_env(&[("PATH", &path_with(&no_buildx))], &args).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("install the buildx plugin"),
        "{}",
        text(&out)
    );

    let (failing, _) = fake_docker(true, false);
    let out = s.cli_env(&[("PATH", &path_with(&failing))], &args).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("buildx build --push"), "{}", text(&out));

    assert!(s.fake.sent("ServiceCreate").is_empty());
    for dir in [root, empty, no_buildx, failing] {
        std::fs::remove_dir_all(dir).ok();
    }
}
