//! `switchyard demo`: the whole idea on one machine, no Redis or Railway.
//! A router on 127.0.0.1:8080 with the in-memory store (or the Redis at
//! `--redis-url`, so the CLI in another terminal can promote and revoke),
//! two built-in backends (v1, v2) serving a page that uses the browser
//! client, a deploy of each, and the commands to try.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{
        Request, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    response::{IntoResponse, Response},
    routing::get,
};
use clap::Args;
use switchyard_core::{
    DeploymentId, UnixTime,
    names::headers::{CLIENT_LOADER, CLIENT_LOADER_LOCATION, SELECTED_DEPLOYMENT},
};
use switchyard_router::{Listeners, RouterConfig};
use switchyard_store::{MemoryStore, NewDeployment, SharedStore, Store};
use tokio::net::TcpListener;

use crate::{Failure, usage};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address the demo router listens on
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub not_for_demo: NotForDemo,
}

/// The global options the demo has no use for. clap does not propagate a
/// global option to a subcommand that declares one with the same id, so
/// declaring them here, hidden, keeps them out of `demo --help`; given
/// anyway, clap still hands the value up to the global, where `lib.rs`
/// refuses it by name.
#[derive(Debug, Default, Args)]
pub struct NotForDemo {
    #[arg(long, id = "platform", hide = true)]
    platform: Option<String>,
    #[arg(long, id = "project-id", hide = true)]
    project_id: Option<String>,
    #[arg(long, id = "environment-id", hide = true)]
    environment_id: Option<String>,
    #[arg(long, id = "redis-service", hide = true)]
    redis_service: Option<String>,
    #[arg(long, hide = true)]
    json: bool,
    #[arg(long, hide = true)]
    config: Option<String>,
    #[arg(long, short = 'y', hide = true)]
    yes: bool,
}

/// The first global option given that the demo would ignore, as its flag.
pub fn ignored_option(
    global: &crate::GlobalArgs,
    flags: &dyn switchyard_core::config::EnvSource,
) -> Option<&'static str> {
    use crate::settings::{ENVIRONMENT_ID, PLATFORM, PROJECT_ID, REDIS_SERVICE};
    let given = |flag: &'static str| (flags.flag(flag).is_some(), flag);
    [
        given(PLATFORM.flag),
        given(PROJECT_ID.flag),
        given(ENVIRONMENT_ID.flag),
        given(REDIS_SERVICE.flag),
        (global.json, "--json"),
        (global.config.is_some(), "--config"),
    ]
    .into_iter()
    .find_map(|(given, flag)| given.then_some(flag))
}

/// The demo's own key prefix in a Redis it is given: never the routers'
/// default, so it cannot collide with a real store, and cleared on exit.
pub const DEMO_PREFIX: &str = "switchyard:demo";

pub async fn run(
    args: DemoArgs,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
) -> Result<(), Failure> {
    let Some(url) = redis_url else {
        if redis_prefix.is_some() {
            return Err(usage(
                "--redis-prefix applies only with --redis-url: without one the demo keeps its state in memory",
            ));
        }
        return serve(args, Arc::new(MemoryStore::new()), None).await;
    };
    let prefix = redis_prefix.unwrap_or_else(|| DEMO_PREFIX.to_string());
    let settings = switchyard_store::RedisSettings::new(&url, &prefix);
    let redis = switchyard_store::RedisStore::new(&settings).map_err(usage)?;
    let snap = redis
        .snapshot()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the store at --redis-url: {e}"))?;
    let shown_url = switchyard_core::redact::url(&url);
    // What clears a leftover by hand (the URL as shown: a password stays
    // hidden and must be filled back in).
    let clear = format!(
        "redis-cli -u '{shown_url}' --scan --pattern '{prefix}:*' | xargs -r redis-cli -u '{shown_url}' del"
    );
    if !snap.deployments.is_empty() {
        if prefix != DEMO_PREFIX {
            return Err(usage(format!(
                "the demo registers v1 and v2 itself, and {prefix} already has deployments: give it an unused \
                 --redis-prefix, or leave it out (the demo then uses {DEMO_PREFIX}, its own, and clears it). \
                 If an earlier demo left them there, clear them with:\n  {clear}"
            )));
        }
        let n = redis.purge().await?;
        println!(
            "cleared {n} keys an earlier demo left under {prefix} (it was stopped before it could)"
        );
    }
    let shown = Some(format!("--redis-url {shown_url} --redis-prefix {prefix}"));
    let served = serve(args, Arc::new(redis.clone()), shown).await;
    // Its records go with it, however it ended.
    match redis.purge().await {
        Ok(n) => println!("removed the demo's {n} keys under {prefix}"),
        Err(e) => eprintln!(
            "could not remove the demo's keys under {prefix} ({e}); the next demo clears them, or:\n  {clear}"
        ),
    }
    served
}

/// The demo itself; `cli` is how another terminal's `switchyard` reaches
/// its store (none for the in-memory store).
async fn serve(args: DemoArgs, store: SharedStore, cli: Option<String>) -> Result<(), Failure> {
    let config = RouterConfig {
        listen: args.listen,
        metrics_listen: None,
        replica_id: "demo".into(),
        ..Default::default()
    };
    let listeners = Listeners::bind(&config).await.map_err(|e| {
        usage(format!(
            "{e}; pass --listen 127.0.0.1:PORT to use another port"
        ))
    })?;
    let addr = listeners.public_addr()?;
    let base = format!("http://{addr}");
    let (param, header) = (
        config.names.query_param.clone(),
        config.names.header.clone(),
    );
    let router = tokio::spawn(switchyard_router::run(
        config,
        store.clone(),
        listeners,
        // SIGTERM as well as Ctrl-C: both close WebSockets with 1001.
        switchyard_router::shutdown_signal(),
    ));
    let kind = match &cli {
        Some(_) => "Redis store",
        None => "in-memory store",
    };
    println!("Switchyard demo: router on {base} ({kind}; Ctrl-C stops it)\n");

    let v1 = spawn_backend("v1").await?;
    deploy(&store, "v1", v1).await?;
    crate::checks::wait_until_serving(
        &base,
        &DeploymentId::new("v1").map_err(usage)?,
        Duration::from_secs(5),
    )
    .await?;
    println!(
        "1. Deployed v1 ({}) and promoted it. Every request goes to v1:",
        v1
    );
    println!("     curl -i {base}/hello\n");

    let v2 = spawn_backend("v2").await?;
    deploy(&store, "v2", v2).await?;
    crate::checks::wait_until_serving(
        &base,
        &DeploymentId::new("v2").map_err(usage)?,
        Duration::from_secs(5),
    )
    .await?;
    println!(
        "2. Deployed v2 ({}) and promoted it. v1 is now draining:",
        v2
    );
    println!("   new visitors land on v2 (see the {SELECTED_DEPLOYMENT} header)");
    println!("     curl -i {base}/hello");
    println!("   clients pinned to v1 stay on v1, by query param or header");
    println!("     curl -i '{base}/hello?{param}=v1'");
    println!("     curl -i -H '{header}: v1' {base}/hello");
    println!("   an open WebSocket to v1 keeps working while v1 drains (any WebSocket client):");
    println!("     websocat 'ws://{addr}/ws?{param}=v1'");
    println!("     python3 -m websockets 'ws://{addr}/ws?{param}=v1'\n");
    println!("3. Stale affinity: a pin to a deployment that no longer exists gets 409,");
    println!("   so the client knows to reload instead of talking to the wrong version:");
    println!("     curl -i '{base}/hello?{param}=v0'");
    println!("   ...or a redirect, when the Pulse client loader asks for one:");
    println!(
        "     curl -i -H '{CLIENT_LOADER}: 1' -H '{CLIENT_LOADER_LOCATION}: /' '{base}/?{param}=v0'\n"
    );
    println!("4. The browser client: open {base}/?{param}=v1 in a browser: a v1 page");
    println!("   (pinned by the link) that keeps its requests on v1 and shows a banner");
    println!("   saying v2 is out; {base}/ is what a new visitor gets (v2).");
    match &cli {
        Some(cli) => {
            println!(
                "   In another terminal, revoke v1 and watch the v1 page reload once onto v2:"
            );
            println!("     switchyard {cli} revoke v1 --yes");
        }
        None => println!(
            "   (run the demo with --redis-url to promote and revoke from another terminal)"
        ),
    }
    println!();
    println!("5. In production the janitor (cron, every 5 minutes) reloads v1's remaining");
    println!("   clients with close code 1012 and deletes v1 once nobody uses it.");
    println!("   Router health: curl {base}/healthz\n");
    println!("Ctrl-C to stop.");

    let exit = router
        .await
        .map_err(|e| anyhow::anyhow!("router task: {e}"))?;
    match exit {
        switchyard_router::Exit::Requested { drained: true } => println!("router stopped"),
        switchyard_router::Exit::Requested { drained: false } => {
            println!("router stopped; some connections were still open at the deadline")
        }
        switchyard_router::Exit::Failed(why) => {
            return Err(anyhow::anyhow!("router failed: {why}").into());
        }
    }
    Ok(())
}

async fn deploy(store: &SharedStore, name: &str, addr: SocketAddr) -> Result<(), Failure> {
    let id = DeploymentId::new(name).map_err(usage)?;
    store
        .register(NewDeployment {
            id: id.clone(),
            service_name: name.into(),
            backend_url: format!("http://{addr}"),
            service_id: None,
            state_epoch: None,
            now: UnixTime::now(),
        })
        .await?;
    store.promote(&id, UnixTime::now()).await?;
    Ok(())
}

async fn spawn_backend(name: &'static str) -> Result<SocketAddr, Failure> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/", get(page))
        .route("/ws", get(ws))
        .fallback(hello)
        .with_state(name);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

async fn hello(State(name): State<&'static str>, req: Request) -> Response {
    axum::Json(serde_json::json!({
        "deployment": name,
        "path": req.uri().path(),
        "message": format!("hello from {name}"),
    }))
    .into_response()
}

/// A page using the browser client from the router's reserved path: it
/// says which version served it, shows a banner when an update is out, and
/// logs the client's events.
async fn page(State(name): State<&'static str>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        DEMO_PAGE.replace("{VERSION}", name),
    )
        .into_response()
}

const DEMO_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Switchyard demo: {VERSION}</title>
<script src="/_switchyard/client.js"></script>
<style>
  body { font: 16px system-ui, sans-serif; margin: 3rem auto; max-width: 40rem; color: #222; }
  #banner { display: none; background: #fff3c4; border: 1px solid #e0c050; padding: .8rem 1rem; border-radius: 6px; }
  code, pre { background: #f4f4f4; padding: .1rem .3rem; border-radius: 4px; }
  pre { padding: .8rem; min-height: 4rem; }
</style></head>
<body>
<div id="banner">A new version is out. <button onclick="location.replace(location.pathname + location.hash)">Load it</button></div>
<h1>Served by <span id="version">{VERSION}</span></h1>
<p>This tab is pinned to <code id="pin">?</code>; its requests stay there while it drains.</p>
<p><button id="ask">Ask the backend</button> <span id="answer"></span></p>
<pre id="log"></pre>
<script>
  const log = (line) => (document.getElementById("log").textContent += line + "\n");
  document.getElementById("pin").textContent = switchyard.pin || "none";
  for (const t of ["pinned", "stale", "reload-scheduled", "reload-suppressed", "update-available"])
    switchyard.addEventListener(t, (e) => log(t + " " + JSON.stringify(e.detail)));
  switchyard.addEventListener("update-available", () => (document.getElementById("banner").style.display = "block"));
  document.getElementById("ask").onclick = async () => {
    const r = await fetch("/hello");
    document.getElementById("answer").textContent = r.ok ? "answered by " + (await r.json()).deployment : "HTTP " + r.status;
  };
</script>
</body></html>
"#;

async fn ws(State(name): State<&'static str>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| echo(socket, name))
}

async fn echo(mut socket: WebSocket, name: &'static str) {
    let _ = socket
        .send(Message::Text(
            format!("connected to {name}; type to echo").into(),
        ))
        .await;
    while let Some(Ok(msg)) = socket.recv().await {
        let reply = match msg {
            Message::Text(t) => Message::Text(format!("{name}: {t}").into()),
            Message::Binary(b) => Message::Binary(b),
            Message::Close(frame) => {
                // Answer the client's close (RFC 6455 §5.5.1) before going.
                let _ = socket.send(Message::Close(frame)).await;
                break;
            }
            _ => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}
