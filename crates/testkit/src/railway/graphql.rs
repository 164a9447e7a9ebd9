//! The fake's GraphQL endpoint: each operation the client sends, answered
//! from the fake's state by its `operationName`.

use super::*;

pub(super) async fn graphql(
    State(state): State<Arc<Mutex<FakeState>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    let auth = sent_auth(&headers);
    let operation = body["operationName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let vars = body["variables"].clone();
    st.sent.push(Sent {
        operation: operation.clone(),
        query: body["query"].as_str().unwrap_or_default().into(),
        variables: vars.clone(),
        auth: auth.clone(),
    });

    if !token_ok(&st, &auth) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "errors": [{ "message": "Not Authorized" }] })),
        )
            .into_response();
    }
    // Every request any test sends is held to Railway's published schema.
    if let Some(schema) = crate::schema::railway()
        && let Err(errors) = schema.check_request(body["query"].as_str().unwrap_or_default(), &vars)
    {
        let msg = format!(
            "fake Railway: {operation} breaks Railway's schema: {}",
            errors.join("; ")
        );
        st.schema_violations.push(msg.clone());
        return gql_error(&msg);
    }
    if let Some(f) = st
        .failures
        .get_mut(&operation)
        .and_then(VecDeque::pop_front)
    {
        return match f {
            Failure::Http(code) => (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "upstream trouble",
            )
                .into_response(),
            Failure::GraphQl(msg) => gql_error(&msg),
        };
    }
    let env = st.environment_id.clone();
    let data = match operation.as_str() {
        "Project" => {
            if vars["id"] != st.project_id.as_str() {
                return gql_error("Project not found");
            }
            let services: Vec<Value> = st
                .services
                .iter()
                .filter(|s| !s.deleted)
                .map(|s| json!({ "node": { "id": s.id, "name": s.name } }))
                .collect();
            json!({ "project": { "id": st.project_id, "name": st.project_name,
                "environments": { "edges": [{ "node": { "id": env, "name": "production" } }] },
                "services": { "edges": services } } })
        }
        "ServiceDelete" => {
            let id = vars["id"].as_str().unwrap_or_default();
            match st.services.iter_mut().find(|s| s.id == id && !s.deleted) {
                Some(s) => {
                    s.deleted = true;
                    json!({ "serviceDelete": true })
                }
                None => return gql_error("Service not found"),
            }
        }
        "ServiceCreate" => {
            let input = &vars["input"];
            let name = input["name"].as_str().unwrap_or_default().to_string();
            if st.services.iter().any(|s| s.name == name && !s.deleted) {
                return gql_error(&format!("A service named {name} already exists"));
            }
            let id = st.id("svc");
            st.services.push(FakeService {
                id: id.clone(),
                name: name.clone(),
                source: input["source"].clone(),
                ..Default::default()
            });
            json!({ "serviceCreate": { "id": id, "name": name } })
        }
        "VariableCollectionUpsert" => {
            let input = &vars["input"];
            let values: BTreeMap<String, String> =
                serde_json::from_value(input["variables"].clone()).unwrap_or_default();
            match input["serviceId"].as_str() {
                Some(id) => match st.services.iter_mut().find(|s| s.id == id) {
                    Some(s) => s.variables.extend(values),
                    None => return gql_error("Service not found"),
                },
                None => st.shared_variables.extend(values),
            }
            json!({ "variableCollectionUpsert": true })
        }
        "Variables" => {
            let vars_out = match vars["serviceId"].as_str() {
                Some(id) => st
                    .services
                    .iter()
                    .find(|s| s.id == id)
                    .map(|s| s.variables.clone())
                    .unwrap_or_default(),
                None => st.shared_variables.clone(),
            };
            json!({ "variables": vars_out })
        }
        "ServiceInstanceUpdate" => {
            let id = vars["serviceId"].as_str().unwrap_or_default();
            match st.services.iter_mut().find(|s| s.id == id) {
                Some(s) => {
                    // A partial update: only the given settings change.
                    if !s.instance.is_object() {
                        s.instance = json!({});
                    }
                    if let (Some(current), Some(given)) =
                        (s.instance.as_object_mut(), vars["input"].as_object())
                    {
                        for (k, v) in given {
                            current.insert(k.clone(), v.clone());
                        }
                    }
                    json!({ "serviceInstanceUpdate": true })
                }
                None => return gql_error("Service not found"),
            }
        }
        "ServiceInstanceDeployV2" => {
            let id = st.start_deployment(vars["serviceId"].as_str().unwrap_or_default());
            json!({ "serviceInstanceDeployV2": id })
        }
        "ServiceInstance" => {
            let id = vars["serviceId"].as_str().unwrap_or_default();
            let Some(s) = st.services.iter().find(|s| s.id == id && !s.deleted) else {
                return gql_error("ServiceInstance not found");
            };
            let setting = |k: &str| s.instance.get(k).cloned().unwrap_or(Value::Null);
            // An update may change the source; it wins over the creation source.
            let source = match s.instance.get("source") {
                Some(v) if v.is_object() => v.clone(),
                _ => s.source.clone(),
            };
            let domains: Vec<Value> = s
                .domains
                .iter()
                .map(|(d, port)| json!({ "domain": d, "targetPort": port }))
                .collect();
            json!({ "serviceInstance": {
                "id": format!("si-{}", s.id),
                "serviceName": s.name,
                "startCommand": setting("startCommand"),
                "cronSchedule": setting("cronSchedule"),
                "healthcheckPath": setting("healthcheckPath"),
                "healthcheckTimeout": setting("healthcheckTimeout"),
                "restartPolicyType": s.instance.get("restartPolicyType").cloned().unwrap_or(json!("ON_FAILURE")),
                "restartPolicyMaxRetries": s.instance.get("restartPolicyMaxRetries").cloned().unwrap_or(json!(10)),
                "overlapSeconds": setting("overlapSeconds"),
                "drainingSeconds": setting("drainingSeconds"),
                "source": if source.is_object() { json!({ "image": source.get("image"), "repo": source.get("repo") }) } else { Value::Null },
                "domains": { "serviceDomains": domains },
            } })
        }
        "ServiceInstanceRedeploy" => {
            let service = vars["serviceId"].as_str().unwrap_or_default().to_string();
            if !st.services.iter().any(|s| s.id == service && !s.deleted) {
                return gql_error("Service not found");
            }
            st.start_deployment(&service);
            json!({ "serviceInstanceRedeploy": true })
        }
        "LatestDeployment" => {
            let service = vars["serviceId"].as_str().unwrap_or_default().to_string();
            if !st.services.iter().any(|s| s.id == service && !s.deleted) {
                return gql_error("ServiceInstance not found");
            }
            let latest = st.latest.get(&service).cloned();
            let deployment = latest.and_then(|id| {
                let status = st.next_status(&id)?;
                Some(json!({ "id": id, "status": status }))
            });
            json!({ "serviceInstance": { "latestDeployment": deployment } })
        }
        "Deployment" => {
            let id = vars["id"].as_str().unwrap_or_default().to_string();
            let Some(status) = st.next_status(&id) else {
                return gql_error("Deployment not found");
            };
            json!({ "deployment": { "id": id, "status": status, "createdAt": "2026-11-23T00:00:00Z", "staticUrl": null, "url": null } })
        }
        "ServiceDomainCreate" => {
            let id = st.id("dom");
            let service = vars["input"]["serviceId"].as_str().unwrap_or("svc");
            let domain = format!("{service}.up.railway.app");
            let port = vars["input"]["targetPort"].as_u64().unwrap_or(0) as u16;
            if let Some(s) = st.services.iter_mut().find(|s| s.id == service) {
                s.domains.push((domain.clone(), port));
            }
            json!({ "serviceDomainCreate": { "id": id, "domain": domain } })
        }
        "ProjectCreate" => {
            // One project at a time: the new one replaces the old, empty.
            let Some(workspace) = vars["input"]["workspaceId"].as_str() else {
                return gql_error("You must specify a workspaceId to create a project");
            };
            st.projects_created_in.push(workspace.to_string());
            st.project_id = st.id("proj");
            st.project_name = vars["input"]["name"]
                .as_str()
                .unwrap_or("unnamed")
                .to_string();
            st.services.clear();
            json!({ "projectCreate": { "id": st.project_id, "name": st.project_name, "environments": { "edges": [{ "node": { "id": env, "name": "production" } }] } } })
        }
        "VolumeCreate" => {
            let id = st.id("vol");
            let service = vars["input"]["serviceId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(s) = st.services.iter_mut().find(|s| s.id == service) {
                if !s.instance.is_object() {
                    s.instance = json!({});
                }
                s.instance["volumeMountPath"] = vars["input"]["mountPath"].clone();
            }
            json!({ "volumeCreate": { "id": id, "name": format!("{service}-volume") } })
        }
        "TcpProxyCreate" => {
            let id = st.id("tcp");
            json!({ "tcpProxyCreate": { "id": id, "domain": "shuttle.proxy.rlwy.net", "proxyPort": 41234 } })
        }
        "ProjectTokenCreate" => {
            let token = st.id("ptok");
            st.tokens_minted.push(token.clone());
            json!({ "projectTokenCreate": token })
        }
        other => return gql_error(&format!("fake Railway does not know operation {other:?}")),
    };
    Json(json!({ "data": data })).into_response()
}
