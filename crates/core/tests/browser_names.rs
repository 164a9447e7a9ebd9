//! The browser client declares the protocol's names once, in
//! `clients/browser/src/core.ts`; this holds them to `names.rs`, and holds
//! the client's other files to using those constants rather than spelling
//! the names again.

use std::{collections::HashMap, path::PathBuf};

use switchyard_core::{
    RoutingNames,
    names::{self, client_paths, headers, timing},
};

fn client_src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../clients/browser/src")
}

/// `export const NAME = "value";` and `export const NAME = 123;` lines, and
/// the `key: "value",` lines of `DEFAULT_NAMES`.
fn declared(core_ts: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut in_defaults = false;
    for line in core_ts.lines().map(str::trim) {
        if line.starts_with("export const DEFAULT_NAMES") {
            in_defaults = true;
            continue;
        }
        if in_defaults {
            if line.starts_with('}') {
                in_defaults = false;
            } else if let Some((key, value)) = line.split_once(':') {
                let value = value.trim().trim_end_matches(',').trim_matches('"');
                out.insert(format!("DEFAULT_NAMES.{}", key.trim()), value.to_string());
            }
            continue;
        }
        let Some(rest) = line.strip_prefix("export const ") else {
            continue;
        };
        let Some((name, value)) = rest.split_once(" = ") else {
            continue;
        };
        let value = value.trim_end_matches(';').trim_matches('"');
        out.insert(name.to_string(), value.to_string());
    }
    out
}

#[test]
fn the_browser_clients_names_are_cores() {
    let core_ts = std::fs::read_to_string(client_src().join("core.ts")).expect("core.ts");
    let got = declared(&core_ts);
    let routing = RoutingNames::default();
    let close = names::RELOAD_CLOSE_CODE.to_string();
    let want: [(&str, &str); 11] = [
        ("DEFAULT_NAMES.query", names::DEFAULT_QUERY_PARAM),
        ("DEFAULT_NAMES.header", names::DEFAULT_HEADER),
        ("DEFAULT_NAMES.prefix", &routing.client_prefix),
        ("PIN_METRIC", timing::PIN),
        ("ACTIVE_METRIC", timing::ACTIVE),
        ("DEPLOYMENT_METRIC", timing::DEPLOYMENT),
        ("STALE_HEADER", headers::STALE_AFFINITY),
        ("ACTIVE_HEADER", headers::ACTIVE_DEPLOYMENT),
        ("RELOAD_WINDOW_HEADER", headers::RELOAD_WINDOW_MS),
        ("STATUS_PATH", client_paths::STATUS),
        ("RELOAD_CLOSE", &close),
    ];
    for (name, value) in want {
        assert_eq!(
            got.get(name).map(String::as_str),
            Some(value),
            "clients/browser/src/core.ts: {name} should be {value:?} as in crates/core/src/names.rs"
        );
    }
}

#[test]
fn the_browser_client_spells_each_name_once() {
    let spelled = [
        timing::PIN,
        timing::ACTIVE,
        timing::DEPLOYMENT,
        headers::STALE_AFFINITY,
        headers::ACTIVE_DEPLOYMENT,
        headers::RELOAD_WINDOW_MS,
        names::DEFAULT_QUERY_PARAM,
        names::DEFAULT_HEADER,
    ];
    let mut read = 0;
    for entry in std::fs::read_dir(client_src()).expect("clients/browser/src") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n == "core.ts")
            || path.extension().is_none_or(|e| e != "ts")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source");
        read += 1;
        for name in spelled {
            assert!(
                !text.contains(&format!("\"{name}\"")),
                "{}: spells {name:?}; import it from core.ts",
                path.display()
            );
        }
    }
    assert!(read >= 2, "read only {read} client sources");
}
