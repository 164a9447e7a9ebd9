//! The `switchyard` binary on the railway platform, against the fake
//! Railway API, a real Redis, a real router and real backends.

#![allow(clippy::unwrap_used)]

mod support;

use support::railway::{Stack, init, stack, switchyard, text};
use switchyard_testkit::{Backend, FakeRailway, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_an_image_then_a_failed_build_leaves_the_active_serving() {
    let s = stack().await;
    let web = Backend::start("web-1").await;
    let port = web.addr.port().to_string();

    let out = s
        .cli(&[
            "deploy",
            "--image",
            "ghcr.io/acme/web:1",
            "--deployment-id",
            "web-1",
            "--port",
            &port,
            "--health-path",
            "/",
            "--json",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let progress = String::from_utf8_lossy(&out.stderr);
    for line in [
        "created Railway service web-1",
        "BUILDING",
        "SUCCESS",
        "health check passed",
        "serves web-1",
    ] {
        assert!(progress.contains(line), "progress shows {line}: {progress}");
    }
    let service = s.fake.live_service("web-1").expect("service created");
    assert_eq!(service.source["image"], "ghcr.io/acme/web:1");
    assert_eq!(service.variables["PULSE_DEPLOYMENT_ID"], "web-1");
    assert_eq!(service.variables["PORT"], port);
    assert_eq!(
        service.variables["SECRET_KEY"], "${{pulse-env.SECRET_KEY}}",
        "user variables are references"
    );
    assert_eq!(
        service.variables["PULSE_RAILWAY_REDIS_URL"],
        "${{pulse-redis.REDIS_URL}}"
    );
    let list = s.list().await;
    assert_eq!(list["active"], "web-1");
    assert_eq!(list["deployments"][0]["service_name"], "web-1");

    // The next build fails mid-deploy: the half-made service goes, web-1 keeps serving.
    s.fake.state().next_statuses = vec!["BUILDING".into(), "FAILED".into()];
    let out = s
        .cli(&[
            "deploy",
            "--image",
            "ghcr.io/acme/web:2",
            "--deployment-id",
            "web-2",
            "--port",
            &port,
            "--health-path",
            "/",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("ended FAILED") && msg.contains("half-made service web-2 was deleted"),
        "{msg}"
    );
    assert!(s.fake.live_service("web-2").is_none());
    let list = s.list().await;
    assert_eq!(list["active"], "web-1");
    assert_eq!(list["deployments"].as_array().unwrap().len(), 1);
    let router = s.router_url.trim_start_matches("http://").to_string();
    let r = switchyard_testkit::http::raw_get(&router, None, "/").await;
    assert!(r.contains("x-pulse-selected-deployment: web-1"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_the_railway_service_and_never_the_active() {
    let s = stack().await;
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    for (id, be) in [("app-a", &a), ("app-b", &b)] {
        s.deploy(id, "img", be).await;
    }
    let out = s
        .cli(&["delete", "--deployment-id", "app-b", "--yes"])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(s.fake.live_service("app-b").is_some());
    let out = s
        .cli(&["delete", "--deployment-id", "app-a", "--yes"])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        s.fake.live_service("app-a").is_none(),
        "serviceDelete was sent"
    );
    let sent = s.fake.sent("ServiceDelete");
    assert_eq!(sent.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_token_or_redis_proxy_say_what_to_do() {
    let s = stack().await;
    let project = s.fake.state().project_id.clone();
    let out = switchyard(&s.fake, &[("RAILWAY_PROJECT_ID", &project)], &["list"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("RAILWAY_TOKEN"), "{}", text(&out));

    for svc in s.fake.state().services.iter_mut() {
        svc.variables.remove("REDIS_PUBLIC_URL");
    }
    let out = s.cli(&["list"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("TCP Proxy") && text(&out).contains("--redis-url"),
        "{}",
        text(&out)
    );
    // An explicit --redis-url needs no proxy.
    let url = s.redis.url();
    let out = s.cli(&["--redis-url", &url, "list"]).await;
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_bootstraps_the_stack_once() {
    let fake = FakeRailway::start().await;
    let out = init(&fake, &["--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        summary["router_domain"]
            .as_str()
            .unwrap()
            .ends_with(".up.railway.app")
    );

    let router = fake.live_service("pulse-router").unwrap();
    assert_eq!(router.source["image"], "ghcr.io/acme/switchyard-router:1");
    assert_eq!(router.instance["healthcheckPath"], "/healthz");
    assert_eq!(router.instance["overlapSeconds"], 35);
    assert_eq!(router.instance["drainingSeconds"], 35);
    assert_eq!(router.variables["REDIS_URL"], "${{pulse-redis.REDIS_URL}}");

    let redis = fake.live_service("pulse-redis").unwrap();
    assert_eq!(redis.instance["volumeMountPath"], "/data");
    assert!(
        redis.variables["REDIS_PUBLIC_URL"].ends_with("@shuttle.proxy.rlwy.net:41234"),
        "{:?}",
        redis.variables
    );
    assert_eq!(redis.variables["REDIS_PASSWORD"].len(), 32);

    let janitor = fake.live_service("pulse-janitor").unwrap();
    assert_eq!(janitor.instance["cronSchedule"], "*/5 * * * *");
    assert_eq!(janitor.instance["restartPolicyType"], "NEVER");
    let minted = fake.state().tokens_minted.clone();
    assert_eq!(
        janitor.variables["RAILWAY_TOKEN"], minted[0],
        "the janitor gets a project token of its own"
    );
    assert_eq!(
        janitor.variables["PULSE_RAILWAY_INTERNAL_TOKEN"],
        "${{pulse-env.PULSE_RAILWAY_INTERNAL_TOKEN}}"
    );
    assert!(
        fake.live_service("pulse-env")
            .unwrap()
            .variables
            .contains_key("PULSE_RAILWAY_INTERNAL_TOKEN")
    );

    // A second init refuses and names what is there.
    let again = init(&fake, &[]).await;
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    let msg = text(&again);
    for name in ["pulse-router", "pulse-redis", "pulse-janitor", "pulse-env"] {
        assert!(msg.contains(name), "{msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_with_an_external_redis_creates_no_redis_service() {
    let fake = FakeRailway::start().await;
    let out = init(&fake, &["--redis-url", "rediss://cache.example:6380"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(fake.live_service("pulse-redis").is_none());
    assert_eq!(
        fake.live_service("pulse-router").unwrap().variables["REDIS_URL"],
        "rediss://cache.example:6380"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_that_fails_midway_lists_what_it_made() {
    let fake = FakeRailway::start().await;
    fake.fail(
        "ServiceDomainCreate",
        switchyard_testkit::railway::Failure::GraphQl("domain limit reached".into()),
        1,
    );
    let out = init(&fake, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let msg = text(&out);
    assert!(
        msg.contains("domain limit reached")
            && msg.contains("Created so far: pulse-redis, pulse-env, pulse-router"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_skips_deployments_whose_service_is_gone() {
    let s = stack().await;
    let backends = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    for (id, be) in ["app-a", "app-b", "app-c"].iter().zip(&backends) {
        s.deploy(id, "img", be).await;
    }
    // app-b drained most recently, but someone deleted its service in Railway.
    for svc in s.fake.state().services.iter_mut() {
        if svc.name == "app-b" {
            svc.deleted = true;
        }
    }
    let out = s.cli(&["rollback"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("app-a is active"), "{}", text(&out));
    assert_eq!(s.list().await["active"], "app-a");
}

/// The README's walk-through: an empty project, `init`, then two deploys;
/// the second ends up active and the first draining.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_an_empty_project_to_a_promoted_second_deployment() {
    let fake = FakeRailway::start().await;
    let out = init(&fake, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    // Railway renders REDIS_PUBLIC_URL from the proxy; here the proxy is a local Redis.
    let redis = RedisServer::start();
    for svc in fake.state().services.iter_mut() {
        if svc.name == "pulse-redis" {
            svc.variables.insert("REDIS_PUBLIC_URL".into(), redis.url());
        }
    }
    let (router_url, router) = support::spawn_router(&redis.url()).await;
    let s = Stack {
        fake,
        redis,
        router_url,
        router,
    };
    let (v1, v2) = (Backend::start("web-1").await, Backend::start("web-2").await);
    for (id, be) in [("web-1", &v1), ("web-2", &v2)] {
        s.deploy(id, "ghcr.io/you/app:1", be).await;
    }
    let list = s.list().await;
    assert_eq!(list["active"], "web-2");
    let states = support::states(&list);
    assert!(
        states.contains(&("web-1".into(), "draining".into())),
        "{states:?}"
    );
    // Both backends reference the user variables and the internal token on pulse-env.
    let web2 = s.fake.live_service("web-2").unwrap();
    assert_eq!(
        web2.variables["PULSE_RAILWAY_INTERNAL_TOKEN"],
        "${{pulse-env.PULSE_RAILWAY_INTERNAL_TOKEN}}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_redis_service_is_the_one_backends_reference() {
    let s = stack().await;
    for svc in s.fake.state().services.iter_mut() {
        if svc.name == "pulse-redis" {
            svc.name = "acme-redis".into();
        }
    }
    let web = Backend::start("web-1").await;
    let port = web.addr.port().to_string();
    let out = s
        .cli(&[
            "--redis-service",
            "acme-redis",
            "deploy",
            "--image",
            "ghcr.io/acme/web:1",
            "--deployment-id",
            "web-1",
            "--port",
            &port,
            "--health-path",
            "/",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let service = s.fake.live_service("web-1").expect("service created");
    assert_eq!(
        service.variables["PULSE_RAILWAY_REDIS_URL"],
        "${{acme-redis.REDIS_URL}}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeploy_restarts_the_active_service_without_a_build() {
    let s = stack().await;
    let web = Backend::start("web-1").await;
    let port = web.addr.port().to_string();
    let out = s
        .cli(&[
            "deploy",
            "--image",
            "ghcr.io/acme/web:1",
            "--deployment-id",
            "web-1",
            "--port",
            &port,
            "--health-path",
            "/",
        ])
        .await;
    assert!(out.status.success(), "{}", text(&out));
    let service = s.fake.live_service("web-1").unwrap();
    // The active one by default, or by id.
    for args in [&["redeploy"][..], &["redeploy", "web-1"]] {
        let out = s.cli(args).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("SUCCESS"),
            "{}",
            text(&out)
        );
    }
    let sent = s.fake.sent("ServiceInstanceRedeploy");
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .all(|r| r.variables["serviceId"] == service.id.as_str())
    );
    assert!(
        s.fake.sent("ServiceInstanceDeployV2").len() <= 1,
        "no new build or deploy"
    );
    // A redeploy Railway fails says so, and nothing changes in the store.
    s.fake.state().next_statuses = vec!["DEPLOYING".into(), "CRASHED".into()];
    let out = s.cli(&["redeploy"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("ended CRASHED"), "{}", text(&out));
    assert_eq!(s.list().await["active"], "web-1");
    // Unknown ids are refused before Railway is asked.
    let out = s.cli(&["redeploy", "ghost"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_railway_cli_login_works_for_people_and_never_lands_in_a_service() {
    let s = stack().await;
    let home = std::env::temp_dir().join(format!("switchyard-home-{}", std::process::id()));
    std::fs::create_dir_all(home.join(".railway")).unwrap();
    std::fs::write(
        home.join(".railway/config.json"),
        r#"{"user":{"token":"login-token-abc"},"projects":{}}"#,
    )
    .unwrap();
    let project = s.fake.state().project_id.clone();
    let home_s = home.to_string_lossy().into_owned();
    let env = [
        ("HOME", home_s.as_str()),
        ("RAILWAY_PROJECT_ID", project.as_str()),
        ("REDIS_URL", &s.redis.url()),
    ];
    // No token variable: the login is used, as a Bearer token.
    let out = switchyard(&s.fake, &env, &["status", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let sent = s.fake.sent("Project");
    assert!(
        sent.iter()
            .any(|r| r.auth
                == switchyard_testkit::railway::SentAuth::Bearer("login-token-abc".into())),
        "{:?}",
        sent.iter().map(|r| &r.auth).collect::<Vec<_>>()
    );
    // Writing it into a service is refused before Railway sees it.
    let client = switchyard_railway::Client::new(switchyard_railway::ClientSettings {
        api: s.fake.api(),
        ..switchyard_railway::ClientSettings::new(switchyard_railway::Auth::User(
            "login-token-abc".into(),
        ))
    })
    .unwrap();
    let env_id = s.fake.state().environment_id.clone();
    let vars = std::collections::BTreeMap::from([(
        "RAILWAY_TOKEN".to_string(),
        "login-token-abc".to_string(),
    )]);
    let err = client
        .upsert_variables(&project, &env_id, None, &vars, true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("login token"), "{err}");
    assert!(
        s.fake
            .sent("VariableCollectionUpsert")
            .iter()
            .all(|r| !r.variables.to_string().contains("login-token-abc"))
    );
    let _ = std::fs::remove_dir_all(&home);
}
