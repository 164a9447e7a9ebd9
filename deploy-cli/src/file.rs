//! `switchyard.toml`: project defaults, below flags and the environment.
//!
//! The file sets the same settings as environment variables, under short
//! keys; it is read as one more environment layer, so every setting gets
//! the precedence flag > environment > file > default from one resolver.
//! Tokens are never read from it: secrets stay in the environment.
//!
//! ```toml
//! platform = "railway"
//! project_id = "…"
//! router_url = "https://app.example.com"
//! deployment_name = "web"
//! ```

use std::{collections::HashMap, path::Path};

use switchyard_core::config::EnvSource;

/// File key → the environment variable it stands in for: the settings
/// that have a key.
fn keys() -> impl Iterator<Item = (&'static str, &'static str)> {
    crate::settings::ALL
        .iter()
        .filter_map(|s| Some((s.file_key()?, *s.env().first()?)))
}

/// The environment, falling back to the file's values.
pub struct Layered<'a> {
    env: &'a dyn EnvSource,
    file: HashMap<&'static str, String>,
}

impl EnvSource for Layered<'_> {
    fn var(&self, key: &str) -> Option<String> {
        self.env
            .var(key)
            .filter(|v| !v.trim().is_empty())
            .or_else(|| self.file.get(key).cloned())
    }
}

/// Reads `path` if it exists. A file that exists but is wrong is an error
/// that names the file and the key.
pub fn layered<'a>(env: &'a dyn EnvSource, path: &Path) -> Result<Layered<'a>, String> {
    let mut file = HashMap::new();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Layered { env, file }),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    for (key, value) in table {
        let Some((_, var)) = keys().find(|(k, _)| *k == key) else {
            let known: Vec<&str> = keys().map(|(k, _)| k).collect();
            return Err(format!(
                "{}: unknown key {key:?}; known keys: {}",
                path.display(),
                known.join(", ")
            ));
        };
        let value = match value {
            toml::Value::String(s) => s,
            other => {
                return Err(format!(
                    "{}: {key} must be a string, got a {}",
                    path.display(),
                    other.type_str()
                ));
            }
        };
        file.insert(var, value);
    }
    Ok(Layered { env, file })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> std::path::PathBuf {
        use rand::Rng;
        let path =
            std::env::temp_dir().join(format!("switchyard-{:x}.toml", rand::rng().random::<u64>()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn env_beats_file_and_file_fills_gaps() {
        let path = write("platform = \"railway\"\nrouter_url = \"https://from-file\"\n");
        let env = [("SWITCHYARD_ROUTER_URL", "https://from-env")];
        let l = layered(&env, &path).unwrap();
        assert_eq!(
            l.var("SWITCHYARD_ROUTER_URL").as_deref(),
            Some("https://from-env")
        );
        assert_eq!(l.var("SWITCHYARD_PLATFORM").as_deref(), Some("railway"));
        assert_eq!(l.var("REDIS_URL"), None);
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn a_missing_file_is_fine_and_a_bad_one_says_where() {
        let none: [(&str, &str); 0] = [];
        assert!(layered(&none, Path::new("/nonexistent/switchyard.toml")).is_ok());
        let path = write("platfrom = \"railway\"\n");
        let err = layered(&none, &path).err().unwrap();
        assert!(
            err.contains("unknown key \"platfrom\"") && err.contains("platform"),
            "{err}"
        );
        let path2 = write("project_id = 3\n");
        assert!(
            layered(&none, &path2)
                .err()
                .unwrap()
                .contains("must be a string")
        );
        let path3 = write("not toml [");
        assert!(layered(&none, &path3).is_err());
        for p in [path, path2, path3] {
            std::fs::remove_file(p).ok();
        }
    }
}
