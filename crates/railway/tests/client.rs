//! The client against the fake Railway API: auth headers, typed errors,
//! and which failures are retried.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use switchyard_railway::{Auth, Client, ClientSettings, RailwayError};
use switchyard_testkit::{
    FakeRailway,
    railway::{Failure, SentAuth},
};

async fn client(fake: &FakeRailway, auth: Auth) -> Client {
    let mut s = ClientSettings::new(auth);
    s.api = fake.api();
    s.backoff = Duration::from_millis(10);
    Client::new(s).unwrap()
}

#[tokio::test]
async fn both_token_kinds_travel_in_their_headers() {
    let fake = FakeRailway::start().await;
    let project = fake.state().project_id.clone();
    client(&fake, Auth::Account("acct".into()))
        .await
        .project(&project)
        .await
        .unwrap();
    client(&fake, Auth::Project("proj".into()))
        .await
        .project(&project)
        .await
        .unwrap();
    let sent = fake.sent("Project");
    assert_eq!(sent[0].auth, SentAuth::Bearer("acct".into()));
    assert_eq!(sent[1].auth, SentAuth::Project("proj".into()));
}

#[tokio::test]
async fn auth_from_env_prefers_the_account_token() {
    let env = [("RAILWAY_TOKEN", "p"), ("RAILWAY_API_TOKEN", "a")];
    assert!(matches!(Auth::from_env(&env), Some(Auth::Account(t)) if t == "a"));
    let env = [("RAILWAY_TOKEN", "p")];
    assert!(matches!(Auth::from_env(&env), Some(Auth::Project(t)) if t == "p"));
    let none: [(&str, &str); 0] = [];
    assert!(Auth::from_env(&none).is_none());
    assert_eq!(
        format!("{:?}", Auth::Account("secret".into())),
        "Auth::Account(***)",
        "tokens never print"
    );
}

#[tokio::test]
async fn errors_are_typed_with_railways_message() {
    let fake = FakeRailway::start().await;
    fake.state().tokens = vec!["good".into()];
    let project = fake.state().project_id.clone();
    let err = client(&fake, Auth::Account("bad".into()))
        .await
        .project(&project)
        .await
        .unwrap_err();
    assert!(matches!(err, RailwayError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains("RAILWAY_API_TOKEN"), "{err}");

    let c = client(&fake, Auth::Account("good".into())).await;
    let err = c.project("proj-nope").await.unwrap_err();
    assert!(
        matches!(&err, RailwayError::GraphQl { messages, .. } if messages[0] == "Project not found"),
        "{err}"
    );
    fake.fail("Project", Failure::Http(429), 5);
    assert!(matches!(
        c.project(&project).await.unwrap_err(),
        RailwayError::RateLimited
    ));
}

#[tokio::test]
async fn transient_failures_of_repeatable_operations_are_retried() {
    let fake = FakeRailway::start().await;
    let project = fake.state().project_id.clone();
    let c = client(&fake, Auth::Account("t".into())).await;
    fake.fail("Project", Failure::Http(502), 2);
    c.project(&project).await.unwrap();
    assert_eq!(fake.sent("Project").len(), 3, "two failures, then success");

    fake.fail("Project", Failure::Http(503), 5);
    let err = c.project(&project).await.unwrap_err();
    assert!(
        matches!(err, RailwayError::Http { status: 503, .. }),
        "{err}"
    );
    assert_eq!(
        fake.sent("Project").len(),
        6,
        "gives up after three attempts"
    );
}

#[tokio::test]
async fn mutations_that_are_not_safe_to_repeat_are_sent_once() {
    let fake = FakeRailway::start().await;
    let (project, env) = {
        let st = fake.state();
        (st.project_id.clone(), st.environment_id.clone())
    };
    let c = client(&fake, Auth::Account("t".into())).await;
    fake.fail("ServiceCreate", Failure::Http(500), 1);
    let err = c
        .service_create(&project, &env, "web", None, None)
        .await
        .unwrap_err();
    assert!(err.is_transient());
    assert_eq!(fake.sent("ServiceCreate").len(), 1);
}

#[tokio::test]
async fn deleting_a_service_that_is_gone_succeeds() {
    let fake = FakeRailway::start().await;
    let id = fake.add_service("old");
    let c = client(&fake, Auth::Account("t".into())).await;
    c.service_delete(&id, None).await.unwrap();
    c.service_delete(&id, None).await.unwrap();
    assert!(fake.live_service("old").is_none());
}

#[tokio::test]
async fn unreachable_railway_is_a_transport_error() {
    let mut s = ClientSettings::new(Auth::Account("t".into()));
    s.api = "http://127.0.0.1:9".into();
    s.backoff = Duration::from_millis(1);
    let err = Client::new(s).unwrap().project("p").await.unwrap_err();
    assert!(matches!(err, RailwayError::Transport(_)), "{err}");
}

fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[tokio::test]
async fn a_source_upload_goes_to_the_up_endpoint_with_the_same_auth() {
    let fake = FakeRailway::start().await;
    let (project, env) = {
        let st = fake.state();
        (st.project_id.clone(), st.environment_id.clone())
    };
    let service = fake.add_service("web-abc123");
    let c = client(&fake, Auth::Project("ptok".into())).await;
    let body = tar_gz(&[
        ("Dockerfile", b"FROM scratch\n"),
        ("app/main.py", b"print(1)\n"),
    ]);
    let up = c
        .upload_source(&project, &env, &service, body.into())
        .await
        .unwrap();
    assert!(up.logs_url.starts_with("https://"), "{up:?}");
    let st = fake.state();
    let recorded = &st.uploads[0];
    assert_eq!(recorded.deployment_id, up.deployment_id);
    assert_eq!(recorded.files, ["Dockerfile", "app/main.py"]);
    assert_eq!(recorded.auth, SentAuth::Project("ptok".into()));
    assert_eq!(recorded.content_type.as_deref(), Some("application/gzip"));
    // The upload started a deployment that polls like any other.
    assert!(st.deployments.contains_key(&up.deployment_id));
}

#[tokio::test]
async fn upload_errors_carry_railways_message() {
    let fake = FakeRailway::start().await;
    fake.state().tokens = vec!["good".into()];
    let (project, env) = {
        let st = fake.state();
        (st.project_id.clone(), st.environment_id.clone())
    };
    let service = fake.add_service("web-abc123");
    let good = client(&fake, Auth::Account("good".into())).await;

    let err = good
        .upload_source(&project, &env, &service, b"not gzip".to_vec().into())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RailwayError::Http { status: 400, body } if body.contains("gzip")),
        "{err}"
    );
    fake.fail("up", Failure::Http(413), 1);
    let err = good
        .upload_source(&project, &env, &service, tar_gz(&[]).into())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("larger than Railway accepts"),
        "{err}"
    );
    let err = client(&fake, Auth::Account("bad".into()))
        .await
        .upload_source(&project, &env, &service, tar_gz(&[]).into())
        .await
        .unwrap_err();
    assert!(matches!(err, RailwayError::Unauthorized(_)), "{err}");
    assert!(fake.state().uploads.is_empty());
}
