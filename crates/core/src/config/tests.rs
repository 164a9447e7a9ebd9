use std::time::Duration;

use super::*;

#[test]
fn a_transposed_flag_gets_the_flag_it_meant() {
    let cmd = clap::Command::new("t")
        .arg(clap::Arg::new("g").long("redis-url").global(true))
        .subcommand(clap::Command::new("deploy").arg(clap::Arg::new("u").long("url")))
        .subcommand(clap::Command::new("other").arg(clap::Arg::new("x").long("ulx")));
    let argv: Vec<String> = ["t", "deploy", "--ulr", "x"].map(String::from).to_vec();
    let e = cmd.clone().try_get_matches_from(&argv).unwrap_err();
    assert_eq!(help::misspelt(&cmd, &e, &argv).as_deref(), Some("--url"));
    let argv: Vec<String> = ["t", "deploy", "--redis-ulr", "x"]
        .map(String::from)
        .to_vec();
    let e = cmd.clone().try_get_matches_from(&argv).unwrap_err();
    let tip = help::misspelt(&cmd, &e, &argv);
    assert!(
        tip.is_none() || tip.as_deref() == Some("--redis-url"),
        "{tip:?}"
    );
    // Nothing close: no tip rather than a wild guess.
    let argv: Vec<String> = ["t", "deploy", "--frobnicate"].map(String::from).to_vec();
    let e = cmd.clone().try_get_matches_from(&argv).unwrap_err();
    assert_eq!(help::misspelt(&cmd, &e, &argv), None);
    assert_eq!(help::edits("ulr", "url"), 1);
    assert_eq!(help::edits("", "ab"), 2);
}

const PORT: Setting<u16> =
    Setting::new("--port", &["SWITCHYARD_PORT", "PORT"], "Port").default(|| 1);
const GRACE: Setting<Duration> =
    Setting::new("--grace", &["GRACE_SECONDS"], "Grace").default(|| Duration::from_secs(3600));
const QUIET: Setting<bool> = Setting::switch("--quiet", &["QUIET"], "Say less");
const TOKEN: Setting<String> = Setting::new("--token", &["TOKEN"], "A token").secret();
const ALL: &[&dyn Declared] = &[&PORT, &GRACE, &QUIET, &TOKEN];

fn resolve(argv: &[&str], env: &[(&str, &str)]) -> (Option<u16>, Duration, bool, String) {
    with_command_line(clap::Command::new("t"), ALL, argv, env, |src| {
        let r = Resolver::new(src);
        let port = r.optional(&PORT).unwrap();
        let grace = r.get(&GRACE).unwrap();
        let quiet = r.get(&QUIET).unwrap();
        r.optional(&TOKEN).unwrap();
        (port, grace, quiet, r.summary())
    })
    .unwrap()
}

#[test]
fn flag_beats_env_beats_default() {
    let env = [("PORT", "9000"), ("SWITCHYARD_PORT", ""), ("QUIET", "yes")];
    assert_eq!(resolve(&["t", "--port", "7000"], &env).0, Some(7000));
    assert_eq!(resolve(&["t"], &env).0, Some(9000));
    assert_eq!(resolve(&["t"], &[]).0, Some(1));
    assert!(resolve(&["t"], &env).2);
    assert!(resolve(&["t", "--quiet"], &[]).2);
    assert!(!resolve(&["t"], &[]).2);
}

#[test]
fn the_summary_shows_each_value_in_its_own_form_and_no_secret() {
    let (_, _, _, line) = resolve(&["t", "--grace", "90m", "--token", "hunter2"], &[]);
    assert_eq!(line, "port=1 grace=90m quiet=off token=set");
    let (_, _, _, line) = resolve(&["t"], &[]);
    assert!(line.ends_with("token=none"), "{line}");
}

#[test]
fn help_names_the_variables_and_the_default_from_the_declaration() {
    let mut cmd = command(clap::Command::new("t"), ALL);
    let help = cmd.render_help().to_string();
    assert!(help.contains("[env: GRACE_SECONDS; default: 1h]"), "{help}");
    assert!(help.contains("[env: QUIET]"), "{help}");
    assert!(!help.contains("default: off"), "{help}");
}

#[test]
fn errors_name_the_setting_and_its_source() {
    let env = [("PORT", "eighty")];
    let flags = Flags::none(&env);
    let err = Resolver::new(&flags).get(&PORT).unwrap_err().to_string();
    assert!(err.contains("--port / SWITCHYARD_PORT / PORT"), "{err}");
    assert!(err.contains("from PORT"), "{err}");
    assert!(err.contains("\"eighty\""), "{err}");
    let env = [("TOKEN", "")];
    let err = Resolver::new(&env).get(&TOKEN).unwrap_err().to_string();
    assert!(err.contains("missing setting --token / TOKEN"), "{err}");
}

#[test]
fn defaults_are_written_back_in_the_form_they_are_read() {
    for d in [
        "500ms", "15s", "120s", "10m", "1h", "24h", "7d", "90m", "0s",
    ] {
        assert_eq!(duration_text(parse_duration(d).unwrap()), d);
    }
    for b in ["64KiB", "16MiB", "1GiB", "1000"] {
        assert_eq!(Bytes(parse_size(b).unwrap()).show(), b);
    }
    assert_eq!(<Option<Duration>>::parse("off").unwrap(), None);
    assert_eq!(<Option<Duration>>::show(&None), "off");
}

#[test]
fn the_doc_table_is_generated_and_checked_between_its_markers() {
    let table = doc_table(ALL);
    assert!(
        table.contains("| `--grace` | `GRACE_SECONDS` | 1h | Grace |"),
        "{table}"
    );
    let dir = std::env::temp_dir().join(format!("switchyard-doc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("settings.md");
    let text = format!("# t\n<!-- settings: t -->\n{table}<!-- end settings: t -->\nafter\n");
    std::fs::write(&page, &text).unwrap();
    assert_eq!(check_doc(&page, "t", &table), Ok(()));
    let err = check_doc(&page, "t", "| other |\n").unwrap_err();
    assert!(err.contains("SWITCHYARD_BLESS=1"), "{err}");
    assert!(check_doc(&page, "missing", &table).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sizes() {
    assert_eq!(parse_size("100MiB").unwrap(), 100 << 20);
    assert_eq!(parse_size("50MB").unwrap(), 50_000_000);
    assert_eq!(parse_size("1.5 GiB").unwrap(), 3 << 29);
    assert_eq!(parse_size("4096").unwrap(), 4096);
    assert!(parse_size("lots").is_err());
    assert!(parse_size("5 parsecs").is_err());
    assert_eq!(human_bytes(999), "999 B");
    assert_eq!(human_bytes(1536), "1.50 KiB");
    assert_eq!(human_bytes(40 << 20), "40.0 MiB");
    assert_eq!(human_bytes(3 << 30), "3.00 GiB");
}

#[test]
fn durations() {
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("15").unwrap(), Duration::from_secs(15));
    assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
    assert_eq!(parse_duration("86400").unwrap(), Duration::from_secs(86400));
    assert!(parse_duration("5 parsecs").is_err());
    assert!(parse_duration("-1").is_err());
    let env = [("GRACE_SECONDS", "soon")];
    let err = Resolver::new(&env).get(&GRACE).unwrap_err().to_string();
    assert!(err.contains("GRACE_SECONDS"), "{err}");
}
