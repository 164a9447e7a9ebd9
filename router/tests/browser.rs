//! What the router does for browsers: one pin from a doubled header,
//! navigations never shown a JSON stale answer, a pinned page's own
//! subresources, event streams ended with their deployment, the client's
//! script delivery and its status endpoint.

#![allow(clippy::unwrap_used)]

mod support;

use std::{io::Read, time::Duration};

use bytes::Bytes;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const NAVIGATE: [(&str, &str); 2] = [
    ("sec-fetch-mode", "navigate"),
    ("sec-fetch-dest", "document"),
];

#[tokio::test]
async fn a_pin_header_patched_in_twice_is_one_pin() {
    let (r, _v1, _v2, _s) = two_deployments().await;
    // What a doubled XHR patch sends: one line, two equal elements.
    let doubled = get(r.addr, "/api", &[("x-pulse-deployment", "v1, v1")]).await;
    assert_eq!(doubled.status, 200);
    assert_eq!(doubled.deployment(), "v1");
    let lines = get(
        r.addr,
        "/api",
        &[("x-pulse-deployment", "v1"), ("x-pulse-deployment", " v1 ")],
    )
    .await;
    assert_eq!(lines.deployment(), "v1");
    // Two different values are still two pins (RFC 9110 §5.3 list).
    let two = get(r.addr, "/api", &[("x-pulse-deployment", "v1, v2")]).await;
    assert_eq!(two.status, 400);
    assert_eq!(two.header("x-switchyard"), Some("router"));
    assert!(two.header("x-request-id").is_some());
}

#[tokio::test]
async fn a_stale_pin_on_a_navigation_redirects_without_it() {
    let (r, _v1, _v2, s) = two_deployments().await;
    s.revoke(&id("v1"), None, switchyard_core::UnixTime::now())
        .await
        .unwrap();
    r.wait_for_snapshot().await;
    eventually(Duration::from_secs(5), "v1 stale", || async {
        (get(r.addr, "/?pulse_deployment=v1", &[]).await.status == 409).then_some(())
    })
    .await;

    let nav = get(r.addr, "/docs/a?x=1&pulse_deployment=v1&y=%20", &NAVIGATE).await;
    assert_eq!(nav.status, 302);
    assert_eq!(nav.header("location"), Some("/docs/a?x=1&y=%20"));
    assert_eq!(nav.header("cache-control"), Some("no-store"));
    assert_eq!(nav.header("x-pulse-stale-affinity"), Some("1"));
    assert_eq!(nav.header("x-switchyard"), Some("router"));
    assert!(nav.header("x-request-id").is_some());

    // Every spelling of the pin goes; a frame is a navigation too; an old
    // browser asking for HTML without fetch metadata is one as well.
    for (path, headers) in [
        (
            "/p?pulse%5Fdeployment=v1",
            &[("sec-fetch-dest", "iframe")][..],
        ),
        (
            "/p?pulse_deployment=v1&pulse_deployment=v1",
            &[("accept", "text/html,*/*")][..],
        ),
    ] {
        let res = get(r.addr, path, headers).await;
        assert_eq!(res.status, 302, "{path}");
        assert_eq!(res.header("location"), Some("/p"), "{path}");
    }

    // The location can only name a path here, never another host.
    let sneaky = get(r.addr, "//evil.example/x?pulse_deployment=v1", &NAVIGATE).await;
    let location = sneaky.header("location").unwrap_or("");
    assert!(
        location.starts_with('/') && !location.starts_with("//"),
        "{location}"
    );

    // A form POST with a stale pin: see the page again, by GET.
    let post = request(
        r.addr,
        "POST",
        "/form?pulse_deployment=v1",
        &NAVIGATE,
        Bytes::from_static(b"a=1"),
    )
    .await;
    assert_eq!(post.status, 303);
    assert_eq!(post.header("location"), Some("/form"));

    // A navigation pinned by a header (a tool, not a browser): a page, not
    // a redirect loop, and still no JSON.
    let header = get(
        r.addr,
        "/p",
        &[NAVIGATE[0], NAVIGATE[1], ("x-pulse-deployment", "v1")],
    )
    .await;
    assert_eq!(header.status, 409);
    assert!(
        header
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );

    // API requests keep the 409 contract.
    let api = get(
        r.addr,
        "/api?pulse_deployment=v1",
        &[("sec-fetch-mode", "cors")],
    )
    .await;
    assert_eq!(api.status, 409);
    assert_eq!(api.json(), serde_json::json!({"detail": "stale affinity"}));
}

#[tokio::test]
async fn a_page_pinned_off_the_active_deployment_brings_its_subresources() {
    let v1 = Backend::start("v1").await;
    let v3 = Backend::start("v3").await;
    let store = memory_store();
    deploy(&store, &[("v1", &v1), ("v3", &v3)], &["v1"]).await;
    let r = TestRouter::start(test_config(), store.clone()).await;

    // A preview link: the page sets the page cookie.
    let page = get(r.addr, "/page?pulse_deployment=v3", &NAVIGATE).await;
    assert_eq!(page.status, 200);
    let cookie = page.header("set-cookie").unwrap().to_string();
    assert!(cookie.starts_with("switchyard_page_pin=v3;"), "{cookie}");
    assert!(
        cookie.contains("Max-Age=600") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let jar = "switchyard_page_pin=v3";

    // Its script reaches v3, and says it varies on the cookie.
    let script = get(
        r.addr,
        "/assets/v3-app.js",
        &[("sec-fetch-dest", "script"), ("cookie", jar)],
    )
    .await;
    assert_eq!(script.status, 200);
    assert_eq!(script.header("x-pulse-selected-deployment"), Some("v3"));
    assert!(
        script
            .headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Cookie"))
    );

    // The cookie never moves a document or a fetch.
    let doc = get(
        r.addr,
        "/page",
        &[NAVIGATE[0], NAVIGATE[1], ("cookie", jar)],
    )
    .await;
    assert_eq!(doc.header("x-pulse-selected-deployment"), Some("v1"));
    assert!(
        doc.header("set-cookie")
            .unwrap()
            .starts_with("switchyard_page_pin=;"),
        "an active page clears it"
    );
    let api = get(
        r.addr,
        "/api",
        &[("sec-fetch-dest", "empty"), ("cookie", jar)],
    )
    .await;
    assert_eq!(api.deployment(), "v1");

    // A page on the active deployment sets nothing.
    let active = get(r.addr, "/page?pulse_deployment=v1", &NAVIGATE).await;
    assert!(active.header("set-cookie").is_none());
}

#[tokio::test]
async fn revoking_a_deployment_ends_its_event_streams() {
    let (r, _v1, _v2, s) = two_deployments().await;
    let mut stream = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    stream
        .write_all(b"GET /sse?hold HTTP/1.1\r\nHost: x\r\nx-pulse-deployment: v1\r\n\r\n")
        .await
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut seen = String::new();
    while !seen.contains("data: v1") {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).await.unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    s.revoke(&id("v1"), None, switchyard_core::UnixTime::now())
        .await
        .unwrap();
    // The stream ends, cleanly (the last chunk, RFC 9112 §7.1), so an
    // EventSource sees its end at once.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap() == 0 {
                return seen;
            }
            seen.push_str(&line);
            if seen.ends_with("\r\n0\r\n\r\n") {
                return seen;
            }
        }
    })
    .await
    .expect("the event stream of a revoked deployment ends");
    assert!(ended.ends_with("0\r\n\r\n"), "{ended}");
}

#[tokio::test]
async fn the_client_script_is_precompressed_validated_and_hashed() {
    let (r, _v1, _v2, _s) = two_deployments().await;
    let plain = get(r.addr, "/_switchyard/client.js", &[]).await;
    assert_eq!(plain.status, 200);
    assert!(plain.header("content-encoding").is_none());
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert_eq!(plain.header("x-content-type-options"), Some("nosniff"));
    let etag = plain.header("etag").unwrap().to_string();
    assert!(String::from_utf8_lossy(&plain.body).starts_with("self.__SWITCHYARD__="));

    let br = get(
        r.addr,
        "/_switchyard/client.js",
        &[("accept-encoding", "gzip, deflate, br")],
    )
    .await;
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_ne!(br.header("etag").unwrap(), etag, "one ETag per coding");
    assert!(br.body.len() < plain.body.len() / 2);

    let gz = get(
        r.addr,
        "/_switchyard/client.js",
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, plain.body);

    let again = get(
        r.addr,
        "/_switchyard/client.js",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    // The hashed name caches forever; an old hash is sent to the new one.
    let status = get(r.addr, "/_switchyard/status", &[]).await.json();
    let hashed = status["script"].as_str().unwrap().to_string();
    let forever = get(r.addr, &hashed, &[]).await;
    assert_eq!(forever.status, 200);
    assert_eq!(
        forever.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(forever.body, plain.body);
    let old = get(r.addr, "/_switchyard/client.0123456789abcdef.js", &[]).await;
    assert_eq!(old.status, 302);
    assert_eq!(old.header("location"), Some(hashed.as_str()));

    let post = request(r.addr, "POST", "/_switchyard/status", &[], Bytes::new()).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn status_says_what_a_reload_would_bring() {
    let (r, _v1, _v2, s) = two_deployments().await;
    let status = |pin: &'static str| {
        let addr = r.addr;
        async move {
            let headers: Vec<(&str, &str)> = if pin.is_empty() {
                vec![]
            } else {
                vec![("x-pulse-deployment", pin)]
            };
            get(addr, "/_switchyard/status", &headers).await.json()
        }
    };
    let old = status("v1").await;
    assert_eq!(old["state"], "draining");
    assert_eq!(old["next"], "v2");
    assert_eq!(old["update"]["kind"], "newer");
    assert_eq!(old["update"]["from"], "v1");
    assert_eq!(old["update"]["to"], "v2");
    assert!(status("v2").await["update"].is_null(), "already there");

    // Unpinned: which deployment (and pin) a page load gets.
    let fresh = status("").await;
    assert_eq!(fresh["state"], "unpinned");
    assert_eq!(fresh["next_pin"], "v2");

    // Unvalidated input is never echoed, and has a bound.
    let unknown = status("nope").await;
    assert_eq!(unknown["state"], "stale");
    assert!(unknown["pin"].is_null());
    let long = "a".repeat(600);
    let res = get(
        r.addr,
        "/_switchyard/status",
        &[("x-pulse-deployment", &long)],
    )
    .await;
    assert_eq!(res.status, 400);
    assert!(res.body.len() < 200);

    // A rollback: the tab on v2 is offered v1, as a rollback.
    s.promote(&id("v1"), switchyard_core::UnixTime::now())
        .await
        .unwrap();
    let back = eventually(Duration::from_secs(5), "the rollback", || async {
        let s = status("v2").await;
        (s["next"] == "v1").then_some(s)
    })
    .await;
    assert_eq!(back["update"]["kind"], "rollback");

    // A preview (pending) is where it is on purpose: no update for it.
    let v3 = Backend::start("v3").await;
    deploy(&s, &[("v3", &v3)], &[]).await;
    let preview = eventually(Duration::from_secs(5), "the preview", || async {
        let s = status("v3").await;
        (s["state"] == "pending").then_some(s)
    })
    .await;
    assert!(preview["update"].is_null());
}
