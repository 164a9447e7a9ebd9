//! Where settings are read from: the command line's flags, then the
//! environment (a map in tests, never the process's own).

use std::collections::HashMap;

/// Where settings come from: the command line's flags, then variables.
pub trait EnvSource {
    fn var(&self, key: &str) -> Option<String>;
    /// The value given on the command line for `flag` (`--name`).
    fn flag(&self, _flag: &str) -> Option<String> {
        None
    }
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
