//! Typed configuration from flags and the environment, resolved once at
//! start.
//!
//! Programs parse flags with clap into raw `Option<String>`s, then resolve
//! each setting here: flag, then the setting's environment variables in
//! order, then the default. The environment is read through [`EnvSource`] so
//! tests inject a map instead of touching the process environment, and every
//! error names the flag and variables that set the bad value.

use std::{collections::HashMap, fmt, str::FromStr, time::Duration};

/// Where environment variables come from.
pub trait EnvSource {
    fn var(&self, key: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

impl<const N: usize> EnvSource for [(&str, &str); N] {
    fn var(&self, key: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_string())
    }
}

/// One configurable setting: its flag, the environment variables that set
/// it (first match wins) and its default as help shows it. This is the one
/// place those names are written: the resolver reads the variables from it
/// and [`annotate`] writes them into `--help`.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub flag: &'static str,
    pub env: &'static [&'static str],
    /// The key that sets it in a settings file, where the program has one.
    pub file_key: Option<&'static str>,
    pub default: Option<&'static str>,
}

impl Setting {
    pub const fn new(flag: &'static str, env: &'static [&'static str]) -> Self {
        Self {
            flag,
            env,
            file_key: None,
            default: None,
        }
    }

    /// Also settable under `key` in the program's settings file.
    pub const fn in_file(self, key: &'static str) -> Self {
        Self {
            file_key: Some(key),
            ..self
        }
    }

    /// The default, in words, for help.
    pub const fn defaults_to(self, default: &'static str) -> Self {
        Self {
            default: Some(default),
            ..self
        }
    }

    /// What help adds after the flag's description: `[env: A, B; default: x]`.
    pub fn help_suffix(&self) -> String {
        let mut parts = Vec::new();
        if !self.env.is_empty() {
            parts.push(format!("env: {}", self.env.join(", ")));
        }
        if let Some(k) = self.file_key {
            parts.push(format!("switchyard.toml: {k}"));
        }
        if let Some(d) = self.default {
            parts.push(format!("default: {d}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("[{}]", parts.join("; "))
        }
    }

    /// The flag and every variable, for judging whether the value is a
    /// secret.
    pub fn names(&self) -> Vec<&'static str> {
        let mut all = vec![self.flag];
        all.extend_from_slice(self.env);
        all
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.flag)?;
        for e in self.env {
            write!(f, " / {e}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {setting} (from {source_name}): {reason}")]
    Invalid {
        setting: String,
        source_name: String,
        value: String,
        reason: String,
    },
    #[error("missing setting {setting}: {hint}")]
    Missing { setting: String, hint: String },
}

impl ConfigError {
    pub fn missing(setting: Setting, hint: impl Into<String>) -> Self {
        Self::Missing {
            setting: setting.to_string(),
            hint: hint.into(),
        }
    }
}

/// Resolves settings against one environment source.
pub struct Resolver<'a> {
    env: &'a dyn EnvSource,
}

impl<'a> Resolver<'a> {
    pub fn new(env: &'a dyn EnvSource) -> Self {
        Self { env }
    }

    /// The raw value and where it came from, skipping empty env values (an
    /// empty variable on Railway means "unset").
    pub fn raw(&self, setting: Setting, flag: Option<&str>) -> Option<(String, &'static str)> {
        if let Some(v) = flag {
            return Some((v.to_string(), setting.flag));
        }
        setting.env.iter().find_map(|name| {
            self.env
                .var(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (v, *name))
        })
    }

    pub fn optional<T: FromStr>(
        &self,
        setting: Setting,
        flag: Option<&str>,
    ) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.optional_with(setting, flag, |s| {
            s.trim().parse::<T>().map_err(|e| e.to_string())
        })
    }

    pub fn value<T: FromStr>(
        &self,
        setting: Setting,
        flag: Option<&str>,
        default: T,
    ) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        Ok(self.optional(setting, flag)?.unwrap_or(default))
    }

    pub fn required<T: FromStr>(
        &self,
        setting: Setting,
        flag: Option<&str>,
        hint: &str,
    ) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.optional(setting, flag)?
            .ok_or_else(|| ConfigError::missing(setting, hint))
    }

    pub fn duration(
        &self,
        setting: Setting,
        flag: Option<&str>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        Ok(self
            .optional_with(setting, flag, parse_duration)?
            .unwrap_or(default))
    }

    pub fn optional_with<T>(
        &self,
        setting: Setting,
        flag: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((raw, from)) = self.raw(setting, flag) else {
            return Ok(None);
        };
        parse(&raw)
            .map(Some)
            .map_err(|reason| ConfigError::Invalid {
                setting: setting.to_string(),
                source_name: from.to_string(),
                value: crate::redact::value(&setting.names(), &raw),
                reason,
            })
    }

    pub fn flag_bool(&self, setting: Setting, flag: bool) -> Result<bool, ConfigError> {
        if flag {
            return Ok(true);
        }
        Ok(self
            .optional_with(setting, None, parse_bool)?
            .unwrap_or(false))
    }
}

/// Parses `500ms`, `15s`, `5m`, `2h`, `1d`, or a bare number of seconds
/// (pulse-railway's `*_SECONDS` variables are bare numbers).
/// Splits `15s` / `100MiB` into the number and its unit.
fn number_and_unit(raw: &str) -> Option<(f64, &str)> {
    let s = raw.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    Some((num.parse().ok()?, unit.trim()))
}

pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let (n, unit) = number_and_unit(raw).ok_or_else(|| {
        "expected a duration such as 500ms, 15s, 5m, 2h or a number of seconds".to_string()
    })?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?}; use ms, s, m, h or d"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// Parses a size: `100MiB`, `512KiB`, `2GiB`, `50MB`, `10kB` or a bare
/// number of bytes.
pub fn parse_size(raw: &str) -> Result<u64, String> {
    let (n, unit) = number_and_unit(raw)
        .ok_or_else(|| "expected a size such as 100MiB, 50MB or a number of bytes".to_string())?;
    let scale: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?}; use B, kB, MB, GB, KiB, MiB or GiB"
            ));
        }
    };
    let bytes = n * scale;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err("size out of range".into());
    }
    Ok(bytes as u64)
}

/// A byte count for people: `999 B`, `12.3 KiB`, `40.1 MiB`, `1.20 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = next;
    }
    if v < 10.0 {
        format!("{v:.2} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// A count that must be at least 1 (connections, lines, workers).
pub fn parse_positive(raw: &str) -> Result<usize, String> {
    match raw.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

pub fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_transposed_flag_gets_the_flag_it_meant() {
        let cmd = clap::Command::new("t")
            .arg(clap::Arg::new("g").long("redis-url").global(true))
            .subcommand(clap::Command::new("deploy").arg(clap::Arg::new("u").long("url")))
            .subcommand(clap::Command::new("other").arg(clap::Arg::new("x").long("ulx")));
        let argv: Vec<String> = ["t", "deploy", "--ulr", "x"].map(String::from).to_vec();
        let e = cmd.clone().try_get_matches_from(&argv).unwrap_err();
        assert_eq!(super::misspelt(&cmd, &e, &argv).as_deref(), Some("--url"));
        let argv: Vec<String> = ["t", "deploy", "--redis-ulr", "x"]
            .map(String::from)
            .to_vec();
        let e = cmd.clone().try_get_matches_from(&argv).unwrap_err();
        let tip = super::misspelt(&cmd, &e, &argv);
        assert!(
            tip.is_none() || tip.as_deref() == Some("--redis-url"),
            "{tip:?}"
        );
        // Nothing close: no tip rather than a wild guess.
        let argv: Vec<String> = ["t", "deploy", "--frobnicate"].map(String::from).to_vec();
        let e = cmd.clone().try_get_matches_from(&argv).unwrap_err();
        assert_eq!(super::misspelt(&cmd, &e, &argv), None);
        assert_eq!(super::edits("ulr", "url"), 1);
        assert_eq!(super::edits("", "ab"), 2);
    }

    use super::*;

    #[test]
    fn the_doc_check_finds_a_missing_flag_or_variable() {
        let doc = "# Settings\n\n# `a`\n| `--x` | `X_VAR` |\n\n# `b`\n| `--y` | as a |\n";
        let a = doc_section(doc, "`a`");
        assert!(a.starts_with("# `a`") && !a.contains("--y"));
        let b = doc_section(doc, "`b`");
        const X: Setting = Setting::new("--x", &["X_VAR"]);
        const Y: Setting = Setting::new("--y", &["X_VAR", "Y_VAR"]);
        assert!(undocumented(a, "", &[X]).is_empty());
        assert_eq!(undocumented(b, a, &[X, Y]), ["--x", "--y (Y_VAR)"]);
    }

    const PORT: Setting = Setting::new("--port", &["SWITCHYARD_PORT", "PORT"]);
    const GRACE: Setting = Setting::new("--grace", &["GRACE_SECONDS"]);

    #[test]
    fn flag_beats_env_beats_default() {
        let env = [("PORT", "9000"), ("SWITCHYARD_PORT", "")];
        let r = Resolver::new(&env);
        assert_eq!(r.value(PORT, Some("7000"), 1u16).unwrap(), 7000);
        assert_eq!(r.value(PORT, None, 1u16).unwrap(), 9000);
        let empty: [(&str, &str); 0] = [];
        assert_eq!(Resolver::new(&empty).value(PORT, None, 1u16).unwrap(), 1);
    }

    #[test]
    fn errors_name_the_setting_and_its_source() {
        let env = [("PORT", "eighty")];
        let err = Resolver::new(&env)
            .value(PORT, None, 1u16)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--port / SWITCHYARD_PORT / PORT"), "{err}");
        assert!(err.contains("from PORT"), "{err}");
        assert!(err.contains("\"eighty\""), "{err}");
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
        let err = Resolver::new(&env)
            .duration(GRACE, None, Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(err.contains("GRACE_SECONDS"), "{err}");
    }
}

/// Appends each setting's variables and default to the help of the flag it
/// names, through every subcommand. Flags without a setting keep their help
/// as it is; [`unmatched`] finds settings that name no flag.
pub fn annotate(cmd: clap::Command, settings: &[Setting]) -> clap::Command {
    let cmd = cmd.mut_args(|arg| {
        let Some(long) = arg.get_long() else {
            return arg;
        };
        let suffixes: Vec<String> = settings
            .iter()
            .filter(|s| s.flag.strip_prefix("--") == Some(long))
            .map(Setting::help_suffix)
            .filter(|s| !s.is_empty())
            .collect();
        if suffixes.is_empty() {
            return arg;
        }
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        arg.help(format!("{help} {}", suffixes.join(" ")))
    });
    cmd.mut_subcommands(|sub| annotate(sub, settings))
}

/// Parses the process's arguments as `T`, its help annotated from
/// `settings`; bad arguments exit as clap's own parse does.
pub fn parse_args<T: clap::Parser>(settings: &[Setting]) -> T {
    let cmd = annotate(T::command(), settings);
    let matches = match cmd.clone().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let argv: Vec<String> = std::env::args().collect();
            match misspelt(&cmd, &e, &argv) {
                Some(tip) => {
                    let text = e.render().to_string();
                    let (head, rest) = text.split_once("\n\n").unwrap_or((&text, ""));
                    eprintln!("{head}\n\n  tip: a similar argument exists: '{tip}'\n\n{rest}");
                    std::process::exit(2);
                }
                None => e.exit(),
            }
        }
    };
    T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// For an unknown `--flag` clap found no suggestion for (it misses
/// transpositions like `--ulr`), the closest long flag of the subcommand
/// being parsed, within two edits.
fn misspelt(cmd: &clap::Command, e: &clap::Error, argv: &[String]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument || e.get(ContextKind::SuggestedArg).is_some() {
        return None;
    }
    let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let bad = bad.split('=').next()?.strip_prefix("--")?;
    // The subcommand whose flags apply: follow subcommand names in argv.
    let mut at = cmd;
    for arg in argv.iter().skip(1) {
        if let Some(sub) = at.find_subcommand(arg) {
            at = sub;
        }
    }
    let globals: Vec<&clap::Arg> = cmd.get_arguments().filter(|a| a.is_global_set()).collect();
    at.get_arguments()
        .chain(globals)
        .filter_map(|a| a.get_long())
        .map(|long| (edits(bad, long), long))
        .filter(|(d, long)| *d <= 2 && *d < long.len())
        .min()
        .map(|(_, long)| format!("--{long}"))
}

/// Edits (insert, delete, substitute, swap two neighbours) from `a` to `b`.
fn edits(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// One program's section of docs/settings.md: from its `# {heading}` line
/// to the next top-level heading.
pub fn doc_section<'d>(doc: &'d str, heading: &str) -> &'d str {
    let start = doc
        .find(&format!("\n# {heading}"))
        .map_or(doc.len(), |i| i + 1);
    let rest = &doc[start..];
    let end = rest[1..].find("\n# ").map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

/// What a program's section of docs/settings.md leaves out of `settings`:
/// a flag it never names, or a variable named neither there nor in
/// `shared` (the section it points to, as the janitor's "as the router").
/// The page is written by hand; this keeps it from falling behind the
/// table the program resolves with.
pub fn undocumented(section: &str, shared: &str, settings: &[Setting]) -> Vec<String> {
    let mut missing = Vec::new();
    for s in settings {
        if s.flag.starts_with("--") && !section.contains(s.flag) {
            missing.push(s.flag.to_string());
        }
        for var in s.env {
            if !section.contains(var) && !shared.contains(var) {
                missing.push(format!("{} ({var})", s.flag));
            }
        }
    }
    missing
}

/// The settings whose flag no argument of `cmd` (or its subcommands) has.
pub fn unmatched(cmd: &clap::Command, settings: &[Setting]) -> Vec<&'static str> {
    fn longs(cmd: &clap::Command, out: &mut Vec<String>) {
        out.extend(
            cmd.get_arguments()
                .filter_map(|a| a.get_long())
                .map(|l| format!("--{l}")),
        );
        for sub in cmd.get_subcommands() {
            longs(sub, out);
        }
    }
    let mut all = Vec::new();
    longs(cmd, &mut all);
    settings
        .iter()
        .filter(|s| s.flag.starts_with("--") && !all.iter().any(|l| l == s.flag))
        .map(|s| s.flag)
        .collect()
}

/// The long flags of `cmd` whose help, annotated from `settings`, names
/// no environment variable: the flags no setting describes.
pub fn without_variables(cmd: clap::Command, settings: &[Setting]) -> Vec<String> {
    annotate(cmd, settings)
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            (!help.contains("[env: ")).then(|| long.to_owned())
        })
        .collect()
}

/// Settings every program shares.
pub mod common {
    use super::Setting;

    pub const REDIS_URL: Setting = Setting::new(
        "--redis-url",
        &["REDIS_URL", "PULSE_KV_URL", "PULSE_RAILWAY_REDIS_URL"],
    );
    pub const REDIS_PREFIX: Setting =
        Setting::new("--redis-prefix", &["PULSE_RAILWAY_REDIS_PREFIX"])
            .defaults_to(crate::names::DEFAULT_PREFIX);
    pub const LOG_FORMAT: Setting =
        Setting::new("--log-format", &["SWITCHYARD_LOG_FORMAT"]).defaults_to("text");
    pub const INTERNAL_TOKEN: Setting =
        Setting::new("--internal-token", &["PULSE_RAILWAY_INTERNAL_TOKEN"]);
}

/// How logs are written: `text` for people, `json` for Railway's log parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("expected text or json".into()),
        }
    }
}
