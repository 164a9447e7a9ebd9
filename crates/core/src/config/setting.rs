//! One setting, declared once: its flag, variables, settings-file key,
//! typed default, parser and help. `--help`, the resolver, the effective
//! configuration line and docs/settings.md all read the declaration, so a
//! new setting is one `const` and its use.

use std::{fmt, net::SocketAddr, time::Duration};

use super::parse::{LogFormat, parse_bool, parse_duration, parse_size};

/// A type a setting can hold: how its text is read, and how a value is
/// written back (for the default in help and the effective configuration).
pub trait Value: Sized {
    fn parse(raw: &str) -> Result<Self, String>;
    fn show(&self) -> String;
}

/// What a setting is when nothing sets it.
pub enum Fallback<T: 'static> {
    /// Nothing: the program requires it or does without it.
    Unset,
    /// A typed value; help shows its text.
    Value(fn() -> T),
    /// Worked out at start (one worker per core, the host's name); help
    /// shows these words and the program computes it.
    Computed(&'static str),
}

impl<T> Clone for Fallback<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Fallback<T> {}

/// One configurable setting of type `T`.
pub struct Setting<T: 'static> {
    /// `--name`, or empty for a variable that has no flag.
    pub flag: &'static str,
    /// The variables that set it, first match wins.
    pub env: &'static [&'static str],
    /// The key that sets it in a settings file, where the program has one.
    pub file_key: Option<&'static str>,
    /// One line for `--help`.
    pub help: &'static str,
    /// What the docs page (and `--help`'s long form) add to the line.
    pub more: &'static str,
    pub fallback: Fallback<T>,
    /// Present-or-absent, like `--json`: no value on the command line.
    pub switch: bool,
    /// Never shown: the effective configuration says only whether it is set.
    pub secret: bool,
    pub(super) parse: fn(&str) -> Result<T, String>,
    pub(super) show: fn(&T) -> String,
}

impl<T> Clone for Setting<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Setting<T> {}

impl<T: Value> Setting<T> {
    /// A setting read with `T`'s own parser.
    pub const fn new(flag: &'static str, env: &'static [&'static str], help: &'static str) -> Self {
        let mut s = Self::with(flag, env, help, T::parse);
        s.secret = false;
        s.show = T::show;
        s
    }
}

impl<T> Setting<T> {
    /// A setting of a type with no text form of its own (a key, say): read
    /// with `parse`, and never shown.
    pub const fn with(
        flag: &'static str,
        env: &'static [&'static str],
        help: &'static str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Self {
        Self {
            flag,
            env,
            file_key: None,
            help,
            more: "",
            fallback: Fallback::Unset,
            switch: false,
            secret: true,
            parse,
            show: shown_as_set::<T>,
        }
    }
}

fn shown_as_set<T>(_: &T) -> String {
    "set".into()
}

impl Setting<bool> {
    /// A present-or-absent flag; its variables take `true`/`false`.
    pub const fn switch(
        flag: &'static str,
        env: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        let mut s = Self::new(flag, env, help);
        s.switch = true;
        s.fallback = Fallback::Value(|| false);
        s
    }
}

impl<T> Setting<T> {
    pub const fn default(mut self, value: fn() -> T) -> Self {
        self.fallback = Fallback::Value(value);
        self
    }

    /// A default the program works out at start, described for help.
    pub const fn computed(mut self, words: &'static str) -> Self {
        self.fallback = Fallback::Computed(words);
        self
    }

    /// Also settable under `key` in the program's settings file.
    pub const fn in_file(mut self, key: &'static str) -> Self {
        self.file_key = Some(key);
        self
    }

    /// Reads the text with `parse` (checks of its own) instead of `T`'s.
    pub const fn parsed_by(mut self, parse: fn(&str) -> Result<T, String>) -> Self {
        self.parse = parse;
        self
    }

    /// Writes a value with `show` instead of `T`'s own form.
    pub const fn shown_by(mut self, show: fn(&T) -> String) -> Self {
        self.show = show;
        self
    }

    pub const fn more(mut self, text: &'static str) -> Self {
        self.more = text;
        self
    }

    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// The default's text, as help and the docs show it.
    pub fn default_text(&self) -> Option<String> {
        match self.fallback {
            Fallback::Unset => None,
            Fallback::Value(v) => Some((self.show)(&v())),
            Fallback::Computed(words) => Some(words.to_string()),
        }
    }

    /// The typed default, when there is one.
    pub fn default_value(&self) -> Option<T> {
        match self.fallback {
            Fallback::Value(v) => Some(v()),
            _ => None,
        }
    }

    pub fn show(&self, value: &T) -> String {
        if self.secret {
            return "set".into();
        }
        (self.show)(value)
    }

    /// The flag without its dashes: the clap id and the name in the
    /// effective configuration.
    pub fn id(&self) -> &'static str {
        self.flag
            .strip_prefix("--")
            .or_else(|| self.env.first().copied())
            .unwrap_or(self.flag)
    }
}

impl<T> fmt::Display for Setting<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = std::iter::once(self.flag)
            .filter(|f| !f.is_empty())
            .chain(self.env.iter().copied());
        if let Some(first) = names.next() {
            f.write_str(first)?;
        }
        for name in names {
            write!(f, " / {name}")?;
        }
        Ok(())
    }
}

/// A setting seen without its type: what help, the docs page and the
/// settings file need.
pub trait Declared: Sync {
    fn flag(&self) -> &'static str;
    fn env(&self) -> &'static [&'static str];
    fn file_key(&self) -> Option<&'static str>;
    fn help(&self) -> &'static str;
    fn more(&self) -> &'static str;
    fn switch(&self) -> bool;
    fn default_text(&self) -> Option<String>;
    /// The flag and every variable, for judging whether a value is secret.
    fn names(&self) -> Vec<&'static str> {
        let mut all: Vec<&'static str> = Some(self.flag())
            .filter(|f| !f.is_empty())
            .into_iter()
            .collect();
        all.extend_from_slice(self.env());
        all
    }
}

// `Setting<T>` holds only function pointers and static text, so it is
// `Sync` whatever `T` is.
impl<T> Declared for Setting<T> {
    fn flag(&self) -> &'static str {
        self.flag
    }
    fn env(&self) -> &'static [&'static str] {
        self.env
    }
    fn file_key(&self) -> Option<&'static str> {
        self.file_key
    }
    fn help(&self) -> &'static str {
        self.help
    }
    fn more(&self) -> &'static str {
        self.more
    }
    fn switch(&self) -> bool {
        self.switch
    }
    fn default_text(&self) -> Option<String> {
        Setting::default_text(self)
    }
}

/// Declares a program's settings and the list of them, `ALL`, that help,
/// the docs page and the checks read: a setting written here is in all of
/// them, and in nothing else to write.
///
/// ```ignore
/// switchyard_core::settings! {
///     shared common::REDIS_URL, common::LOG_FORMAT;
///     pub IDLE_GRACE: Duration = Setting::new("--idle-grace", &["SWITCHYARD_IDLE_GRACE"], "…")
///         .default(|| Duration::from_secs(600));
/// }
/// ```
#[macro_export]
macro_rules! settings {
    (
        shared $($shared:path),* ;
        $( $(#[$meta:meta])* $vis:vis $name:ident : $ty:ty = $value:expr ; )*
    ) => {
        $( $(#[$meta])* $vis const $name: $crate::config::Setting<$ty> = $value; )*
        /// Every setting of this program, in the order help lists them.
        pub const ALL: &[&dyn $crate::config::Declared] = &[$(&$shared,)* $(&$name),*];
    };
}

impl Value for Duration {
    fn parse(raw: &str) -> Result<Self, String> {
        parse_duration(raw)
    }
    fn show(&self) -> String {
        duration_text(*self)
    }
}

/// `500ms`, `120s`, `10m`, `1h`, `24h`, `7d`: the largest unit that
/// divides it, minutes from ten up (`120s`, not `2m`) and days from two up
/// (a day is `24h`).
pub fn duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        let least = match unit {
            "d" => 2,
            "m" => 10,
            _ => 1,
        };
        if s.is_multiple_of(size) && s >= least * size {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

macro_rules! from_str_values {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn parse(raw: &str) -> Result<Self, String> {
                raw.trim().parse::<$t>().map_err(|e| e.to_string())
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
from_str_values!(u16, u32, u64, usize, f64, SocketAddr);

impl Value for String {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(raw.trim().to_string())
    }
    fn show(&self) -> String {
        self.clone()
    }
}

impl Value for bool {
    fn parse(raw: &str) -> Result<Self, String> {
        parse_bool(raw)
    }
    fn show(&self) -> String {
        if *self { "on" } else { "off" }.into()
    }
}

impl Value for LogFormat {
    fn parse(raw: &str) -> Result<Self, String> {
        raw.trim().parse()
    }
    fn show(&self) -> String {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
        .into()
    }
}

/// `off` is a value of its own: a limit turned off, not a limit unset.
impl<T: Value> Value for Option<T> {
    fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().eq_ignore_ascii_case("off") {
            Ok(None)
        } else {
            T::parse(raw).map(Some)
        }
    }
    fn show(&self) -> String {
        self.as_ref().map_or_else(|| "off".into(), T::show)
    }
}

/// A byte count read as `64KiB`, `10MB` or bytes, and shown in the largest
/// binary unit that divides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

impl Value for Bytes {
    fn parse(raw: &str) -> Result<Self, String> {
        parse_size(raw).map(Bytes)
    }
    fn show(&self) -> String {
        for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return format!("{}{unit}", self.0 / size);
            }
        }
        self.0.to_string()
    }
}

/// A list written comma-separated; empty items are dropped.
impl Value for Vec<String> {
    fn parse(raw: &str) -> Result<Self, String> {
        Ok(raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect())
    }
    fn show(&self) -> String {
        if self.is_empty() {
            "none".into()
        } else {
            self.join(",")
        }
    }
}
