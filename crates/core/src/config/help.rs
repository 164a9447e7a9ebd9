//! The clap side of the declarations: each setting becomes an argument
//! whose help names its variables, file key and default, and the values
//! given become the first layer the resolver reads.

use std::collections::HashMap;

use super::{setting::Declared, source::EnvSource};

/// The argument for one declared setting: `--name VALUE` (or a switch),
/// its help followed by `[env: …; default: …]`.
fn arg(setting: &dyn Declared) -> clap::Arg {
    let id = setting.flag().trim_start_matches('-');
    let mut notes = Vec::new();
    if !setting.env().is_empty() {
        notes.push(format!("env: {}", setting.env().join(", ")));
    }
    if let Some(k) = setting.file_key() {
        notes.push(format!("switchyard.toml: {k}"));
    }
    if let Some(d) = setting.default_text().filter(|_| !setting.switch()) {
        notes.push(format!("default: {d}"));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" [{}]", notes.join("; "))
    };
    let arg = clap::Arg::new(id)
        .long(id)
        .help(format!("{}{notes}", setting.help()));
    let arg = if setting.more().is_empty() {
        arg
    } else {
        arg.long_help(format!(
            "{}. {}{notes}",
            setting.help(),
            sentence(setting.more())
        ))
    };
    if setting.switch() {
        arg.action(clap::ArgAction::SetTrue)
    } else {
        arg.value_name("VALUE").action(clap::ArgAction::Set)
    }
}

/// `text` with its first letter a capital: a declaration's added words
/// read as a sentence of their own after its help line.
pub(super) fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `cmd` with an argument for every setting that has a flag.
pub fn command(cmd: clap::Command, settings: &[&dyn Declared]) -> clap::Command {
    cmd.args(
        settings
            .iter()
            .filter(|s| s.flag().starts_with("--"))
            .map(|s| arg(*s)),
    )
}

/// `cmd` with an argument for every setting that has a flag, taken by
/// every subcommand too and listed under `heading`.
pub fn global(
    cmd: clap::Command,
    settings: &[&dyn Declared],
    heading: &'static str,
) -> clap::Command {
    cmd.args(
        settings
            .iter()
            .filter(|s| s.flag().starts_with("--"))
            .map(|s| arg(*s).global(true).help_heading(heading)),
    )
}

/// The values the command line gave for declared settings, read before
/// the source under them (the environment, then a settings file).
pub struct Flags<'a> {
    given: HashMap<&'static str, String>,
    under: &'a dyn EnvSource,
}

impl<'a> Flags<'a> {
    /// What `matches` (and the subcommand it chose, and so on down) holds
    /// for `settings`.
    pub fn new(
        matches: &clap::ArgMatches,
        settings: &[&dyn Declared],
        under: &'a dyn EnvSource,
    ) -> Self {
        let mut given = HashMap::new();
        let mut at = Some(matches);
        while let Some(m) = at {
            for s in settings.iter().filter(|s| s.flag().starts_with("--")) {
                let id = s.flag().trim_start_matches('-');
                let value = if s.switch() {
                    matches!(m.try_get_one::<bool>(id), Ok(Some(true))).then(|| "true".to_string())
                } else {
                    m.try_get_one::<String>(id).ok().flatten().cloned()
                };
                if let Some(v) = value {
                    given.insert(s.flag(), v);
                }
            }
            at = m.subcommand().map(|(_, sub)| sub);
        }
        Self { given, under }
    }

    /// Flags set by the program itself, as `(flag, value)`.
    pub fn given(
        pairs: impl IntoIterator<Item = (&'static str, String)>,
        under: &'a dyn EnvSource,
    ) -> Self {
        Self {
            given: pairs.into_iter().collect(),
            under,
        }
    }

    /// The same flags over another source: a settings file layered under
    /// the environment, say.
    pub fn over<'b>(&self, under: &'b dyn EnvSource) -> Flags<'b> {
        Flags {
            given: self.given.clone(),
            under,
        }
    }

    /// The source under the flags.
    pub fn under(&self) -> &'a dyn EnvSource {
        self.under
    }

    /// No flags: only the source under them.
    pub fn none(under: &'a dyn EnvSource) -> Self {
        Self {
            given: HashMap::new(),
            under,
        }
    }
}

impl EnvSource for Flags<'_> {
    fn var(&self, key: &str) -> Option<String> {
        self.under.var(key)
    }
    fn flag(&self, flag: &str) -> Option<String> {
        self.given
            .get(flag)
            .cloned()
            .or_else(|| self.under.flag(flag))
    }
}

/// Runs `resolve` on what `argv` (the program's name first) and `env` set,
/// as the program would at start: flags parsed against `cmd` with an
/// argument for each of `settings`, over a map of variables. For tests and
/// tools that resolve a program's settings without its process.
pub fn with_command_line<T>(
    cmd: clap::Command,
    settings: &[&dyn Declared],
    argv: &[&str],
    env: &[(&str, &str)],
    resolve: impl FnOnce(&dyn EnvSource) -> T,
) -> Result<T, clap::Error> {
    let matches = command(cmd, settings).try_get_matches_from(argv)?;
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    Ok(resolve(&Flags::new(&matches, settings, &env)))
}

/// Parses the process's arguments against `cmd`; bad arguments exit as
/// clap's own parse does, with a tip for a misspelt flag.
pub fn parse_args(cmd: clap::Command) -> clap::ArgMatches {
    match cmd.clone().try_get_matches() {
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
    }
}

/// For an unknown `--flag` clap found no suggestion for (it misses
/// transpositions like `--ulr`), the closest long flag of the subcommand
/// being parsed, within two edits.
pub(super) fn misspelt(cmd: &clap::Command, e: &clap::Error, argv: &[String]) -> Option<String> {
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
pub(super) fn edits(a: &str, b: &str) -> usize {
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
