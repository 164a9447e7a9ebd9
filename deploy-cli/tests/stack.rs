//! `init` creating a project, and `upgrade` bringing a stack made by an
//! older version up to date, against the fake Railway API.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::railway::{init, switchyard, text};
use switchyard_testkit::FakeRailway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_without_a_project_creates_one_in_the_workspace() {
    let fake = FakeRailway::start().await;
    let old_project = fake.state().project_id.clone();
    let images = [
        (
            "SWITCHYARD_ROUTER_IMAGE",
            "ghcr.io/acme/switchyard-router:1",
        ),
        (
            "SWITCHYARD_JANITOR_IMAGE",
            "ghcr.io/acme/switchyard-janitor:1",
        ),
    ];
    let account = [("RAILWAY_API_TOKEN", "account-token"), images[0], images[1]];

    // Neither a project nor a workspace: nothing to build into.
    let out = switchyard(&fake, &account, &["init"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--workspace-id"), "{}", text(&out));
    // A project token cannot create projects.
    let out = switchyard(
        &fake,
        &[
            ("RAILWAY_TOKEN", "project-token"),
            ("RAILWAY_WORKSPACE_ID", "ws-1"),
            images[0],
            images[1],
        ],
        &["init"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("RAILWAY_API_TOKEN"), "{}", text(&out));
    assert!(fake.sent("ProjectCreate").is_empty());

    let out = switchyard(
        &fake,
        &[
            ("RAILWAY_API_TOKEN", "account-token"),
            ("RAILWAY_WORKSPACE_ID", "ws-1"),
            images[0],
            images[1],
        ],
        &["init", "--project-name", "shop", "--json"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            "images: router ghcr.io/acme/switchyard-router:1, janitor ghcr.io/acme/switchyard-janitor:1"
        ),
        "{}",
        text(&out)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let st = fake.state();
    assert_eq!(st.projects_created_in, ["ws-1"]);
    assert_eq!(st.project_name, "shop");
    assert_ne!(st.project_id, old_project);
    assert_eq!(summary["project_id"], st.project_id.as_str());
    assert_eq!(summary["project_created"], true);
    drop(st);
    for name in ["pulse-redis", "pulse-env", "pulse-router", "pulse-janitor"] {
        assert!(fake.live_service(name).is_some(), "{name} missing");
    }
    // Every service was made in the new project.
    for sent in fake.sent("ServiceCreate") {
        assert_eq!(
            sent.variables["input"]["projectId"], summary["project_id"],
            "{:?}",
            sent.variables
        );
    }
}

/// Makes the stack look like an older version made it: another image and
/// start command, no overlap, an old health path and cron schedule, a
/// missing managed variable, and no env service at all.
fn age(fake: &FakeRailway) {
    let mut st = fake.state();
    for s in st.services.iter_mut() {
        match s.name.as_str() {
            "pulse-router" => {
                s.instance = json!({
                    "source": { "image": "ghcr.io/acme/pulse-railway-router:0.3" },
                    "startCommand": "pulse-railway router",
                    "healthcheckPath": "/health",
                    "healthcheckTimeout": 30,
                    "restartPolicyType": "ON_FAILURE",
                    "restartPolicyMaxRetries": 10,
                });
                s.variables.remove("SWITCHYARD_LOG_FORMAT");
            }
            "pulse-janitor" => {
                s.instance["cronSchedule"] = json!("*/10 * * * *");
            }
            "pulse-env" => s.deleted = true,
            _ => {}
        }
    }
}

const MUTATIONS: &[&str] = &[
    "ServiceCreate",
    "VariableCollectionUpsert",
    "ServiceInstanceUpdate",
    "ServiceDomainCreate",
    "ServiceInstanceDeployV2",
    "ServiceDelete",
    "ProjectTokenCreate",
];

fn mutations(fake: &FakeRailway) -> usize {
    fake.state()
        .sent
        .iter()
        .filter(|s| MUTATIONS.contains(&s.operation.as_str()))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_plans_then_applies_then_finds_the_stack_up_to_date() {
    let fake = FakeRailway::start().await;
    let out = init(&fake, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    age(&fake);
    // A backend deployment, whose service and variables are not the stack's.
    let web = fake.add_service("web-1");
    for s in fake.state().services.iter_mut().filter(|s| s.id == web) {
        s.source = json!({ "image": "ghcr.io/acme/web:1" });
        s.variables.insert("SECRET_KEY".into(), "s3cret".into());
    }
    let web_before = fake.live_service("web-1").unwrap();
    let project = fake.state().project_id.clone();
    let env = [
        ("RAILWAY_API_TOKEN", "account-token"),
        ("RAILWAY_PROJECT_ID", project.as_str()),
        (
            "SWITCHYARD_ROUTER_IMAGE",
            "ghcr.io/acme/switchyard-router:2",
        ),
        (
            "SWITCHYARD_JANITOR_IMAGE",
            "ghcr.io/acme/switchyard-janitor:2",
        ),
    ];

    let before = mutations(&fake);
    let out = switchyard(&fake, &env, &["upgrade", "--dry-run"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout).to_string();
    for line in [
        "pulse-env\n  + create the service",
        "~ image: ghcr.io/acme/pulse-railway-router:0.3 -> ghcr.io/acme/switchyard-router:2",
        "~ startCommand: pulse-railway router -> /usr/local/bin/switchyard-router",
        "~ healthcheckPath: /health -> /healthz",
        "+ overlapSeconds: (unset) -> 35",
        "+ drainingSeconds: (unset) -> 35",
        "+ variable SWITCHYARD_LOG_FORMAT = json",
        "~ image: ghcr.io/acme/switchyard-janitor:1 -> ghcr.io/acme/switchyard-janitor:2",
        "~ cronSchedule: */10 * * * * -> */5 * * * *",
        "dry run: nothing was changed",
    ] {
        assert!(plan.contains(line), "missing {line:?} in:\n{plan}");
    }
    assert!(!plan.contains("web-1"), "{plan}");
    assert_eq!(mutations(&fake), before, "a dry run changes nothing");

    // Off a terminal, applying needs --yes.
    let out = switchyard(&fake, &env, &["upgrade"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert_eq!(mutations(&fake), before);

    let out = switchyard(&fake, &env, &["upgrade", "--yes"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("upgraded:"), "{}", text(&out));
    let router = fake.live_service("pulse-router").unwrap();
    assert_eq!(
        router.instance["source"]["image"],
        "ghcr.io/acme/switchyard-router:2"
    );
    assert_eq!(router.instance["overlapSeconds"], 35);
    assert_eq!(router.instance["drainingSeconds"], 35);
    assert_eq!(router.instance["healthcheckPath"], "/healthz");
    assert_eq!(router.variables["SWITCHYARD_LOG_FORMAT"], "json");
    let janitor = fake.live_service("pulse-janitor").unwrap();
    assert_eq!(janitor.instance["cronSchedule"], "*/5 * * * *");
    let envsvc = fake.live_service("pulse-env").unwrap();
    assert_eq!(envsvc.variables["PULSE_RAILWAY_INTERNAL_TOKEN"].len(), 32);
    // The changed services were redeployed so they run what was set.
    let deployed: Vec<String> = fake
        .sent("ServiceInstanceDeployV2")
        .iter()
        .map(|s| s.variables["serviceId"].as_str().unwrap().to_string())
        .collect();
    assert!(deployed.contains(&router.id) && deployed.contains(&janitor.id));
    // The backend was not touched.
    assert!(
        fake.state()
            .sent
            .iter()
            .filter(|s| MUTATIONS.contains(&s.operation.as_str()))
            .all(|s| s.variables.to_string().find(&web).is_none()),
        "a backend service was changed"
    );
    let web_after = fake.live_service("web-1").unwrap();
    assert_eq!(web_after.variables, web_before.variables);
    assert_eq!(web_after.source, web_before.source);

    let before = mutations(&fake);
    let out = switchyard(&fake, &env, &["upgrade"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("up to date"), "{}", text(&out));
    assert_eq!(mutations(&fake), before);
    // The generated secrets stay what they were.
    assert_eq!(
        fake.live_service("pulse-env").unwrap().variables,
        envsvc.variables
    );
}

/// No release of this version exists (and this machine cannot reach the
/// registry at all): init without images stops before creating anything,
/// with the recipe to build and push them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_without_images_stops_with_the_recipe_when_none_are_published() {
    let fake = FakeRailway::start().await;
    let project = fake.state().project_id.clone();
    let env = [
        ("RAILWAY_API_TOKEN", "account-token"),
        ("RAILWAY_PROJECT_ID", project.as_str()),
        (
            "SWITCHYARD_JANITOR_IMAGE",
            "ghcr.io/acme/switchyard-janitor:1",
        ),
    ];
    let out = switchyard(&fake, &env, &["init"]).await;
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        said.contains(&format!("ghcr.io/switchyard/switchyard-router:{version}")),
        "{said}"
    );
    assert!(
        said.contains("is not published") || said.contains("could not check"),
        "{said}"
    );
    for step in [
        "docker buildx build --platform linux/amd64 -f docker/router.Dockerfile",
        "-f docker/janitor.Dockerfile",
        "--router-image REGISTRY/switchyard-router:",
        "SWITCHYARD_ROUTER_IMAGE",
    ] {
        assert!(said.contains(step), "missing {step:?}: {said}");
    }
    assert!(fake.sent("ServiceCreate").is_empty());
    assert!(fake.sent("ProjectCreate").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_keeps_user_variables_and_refuses_a_project_without_a_stack() {
    let fake = FakeRailway::start().await;
    let project = fake.state().project_id.clone();
    let env = [
        ("RAILWAY_API_TOKEN", "account-token"),
        ("RAILWAY_PROJECT_ID", project.as_str()),
    ];
    let out = switchyard(&fake, &env, &["upgrade", "--dry-run"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("switchyard init"), "{}", text(&out));

    let out = init(&fake, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    for s in fake.state().services.iter_mut() {
        if s.name == "pulse-env" {
            s.variables.insert("STRIPE_KEY".into(), "sk_live_1".into());
        }
        if s.name == "pulse-router" {
            s.variables
                .insert("SWITCHYARD_MAX_CONNECTIONS".into(), "5000".into());
        }
    }
    let out = switchyard(
        &fake,
        &env,
        &[
            "upgrade",
            "--yes",
            "--json",
            "--router-image",
            "ghcr.io/acme/switchyard-router:2",
            "--janitor-image",
            "ghcr.io/acme/switchyard-janitor:1",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["applied"], true);
    assert_eq!(report["plan"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["plan"][0]["service"], "pulse-router");
    assert_eq!(
        fake.live_service("pulse-env").unwrap().variables["STRIPE_KEY"],
        "sk_live_1"
    );
    assert_eq!(
        fake.live_service("pulse-router").unwrap().variables["SWITCHYARD_MAX_CONNECTIONS"],
        "5000"
    );
}
