//! Every operation the client can send, and every request it actually
//! sends, checked against Railway's published schema
//! (`../shared/railway/schema.json`).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use switchyard_railway::{Auth, Client, ClientSettings, OPERATIONS, ops::Source};
use switchyard_testkit::FakeRailway;
use switchyard_testkit::schema::Schema;

fn schema() -> Option<&'static Schema> {
    let schema = switchyard_testkit::schema::railway();
    if schema.is_none() {
        eprintln!(
            "SKIPPED: {} is absent; cannot validate operations against Railway's schema",
            switchyard_testkit::schema::railway_schema_path().display()
        );
    }
    schema
}

#[test]
fn every_operation_is_valid_against_the_schema() {
    let Some(schema) = schema() else { return };
    let mut failures = Vec::new();
    for op in OPERATIONS {
        let doc = graphql_parser::parse_query::<String>(op.query).unwrap();
        let named = doc
            .definitions
            .iter()
            .any(|d| format!("{d}").contains(&format!(" {}", op.name)));
        assert!(
            named,
            "{}: the operation's name must match what the client sends",
            op.name
        );
        if let Err(errors) = schema.check_operation(op.query) {
            failures.push(format!("{}: {}", op.name, errors.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_validator_catches_mistakes() {
    let Some(schema) = schema() else { return };
    for bad in [
        "query A($id: String!) { project(id: $id) { nope } }",
        "query A($id: Int!) { project(id: $id) { id } }",
        "query A { project { id } }",
        "query A($id: String!) { project(id: $id) }",
        "mutation A($id: String!) { serviceDelete(id: $id, bogus: $id) }",
    ] {
        assert!(schema.check_operation(bad).is_err(), "{bad}");
    }
    let mut errors = Vec::new();
    schema.check_value(
        "ServiceCreateInput!",
        &serde_json::json!({ "projectId": "p", "sauce": 1 }),
        "input",
        &mut errors,
    );
    assert!(
        errors.iter().any(|e| e.contains("no field sauce")),
        "{errors:?}"
    );
}

/// Drives every client call against the fake and validates what went over
/// the wire, variables included.
#[tokio::test]
async fn what_the_client_sends_matches_the_schema() {
    let Some(schema) = schema() else { return };
    let fake = FakeRailway::start().await;
    let mut settings = ClientSettings::new(Auth::Account("tok".into()));
    settings.api = fake.api();
    let client = Client::new(settings).unwrap();
    let (project, env) = {
        let st = fake.state();
        (st.project_id.clone(), st.environment_id.clone())
    };

    let p = client.project(&project).await.unwrap();
    assert_eq!(p.environments[0].id, env);
    let svc = client
        .service_create(
            &project,
            &env,
            "web-1",
            Some(&Source::Image("ghcr.io/acme/web:1".into())),
            None,
        )
        .await
        .unwrap();
    // A repository source with its branch, as `deploy --repo --branch` sends.
    client
        .service_create(
            &project,
            &env,
            "web-2",
            Some(&Source::Repo("acme/web".into())),
            Some("main"),
        )
        .await
        .unwrap();
    let vars: BTreeMap<String, String> =
        [("PULSE_DEPLOYMENT_ID".to_string(), "web-1".to_string())].into();
    client
        .upsert_variables(&project, &env, Some(&svc.id), &vars, true)
        .await
        .unwrap();
    assert_eq!(
        client
            .variables(&project, &env, Some(&svc.id))
            .await
            .unwrap(),
        vars
    );
    client.service_instance_update(&svc.id, &env, &serde_json::json!({ "healthcheckPath": "/_pulse/health", "restartPolicyType": "ON_FAILURE", "overlapSeconds": 35 })).await.unwrap();
    let dep = client.deploy(&svc.id, &env).await.unwrap();
    assert_eq!(client.deployment(&dep).await.unwrap().status, "BUILDING");
    client
        .service_domain_create(&svc.id, &env, 8000)
        .await
        .unwrap();
    client
        .volume_create(&project, &env, &svc.id, "/data")
        .await
        .unwrap();
    assert_eq!(
        client.tcp_proxy_create(&env, &svc.id, 6379).await.unwrap(),
        "shuttle.proxy.rlwy.net:41234"
    );
    client
        .project_token_create(&project, &env, "switchyard-janitor")
        .await
        .unwrap();
    let instance = client.service_instance(&svc.id, &env).await.unwrap();
    assert_eq!(instance.image(), Some("ghcr.io/acme/web:1"));
    assert_eq!(instance.overlap_seconds, Some(35));
    assert_eq!(instance.service_domains().len(), 1);
    assert_eq!(
        client
            .raw_variables(&project, &env, Some(&svc.id))
            .await
            .unwrap(),
        vars
    );
    client.service_delete(&svc.id, Some(&env)).await.unwrap();
    client.project_create("fresh", "ws-1").await.unwrap();

    let sent = fake.state().sent.clone();
    assert!(sent.len() >= 10);
    // The fake holds every request of every test to the schema.
    let err = client
        .service_instance_update(&svc.id, &env, &serde_json::json!({ "healthCheck": "/x" }))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("breaks Railway's schema")
            && err.to_string().contains("healthCheck"),
        "{err}"
    );
    assert_eq!(fake.state().schema_violations.len(), 1);
    let failures: Vec<String> = sent
        .iter()
        .filter_map(|s| {
            schema
                .check_request(&s.query, &s.variables)
                .err()
                .map(|errors| format!("{}: {}", s.operation, errors.join("; ")))
        })
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}
