//! docs/settings.md's tables, generated from the declarations and held
//! current by a test in each program.

use super::setting::Declared;

/// One program's settings as a Markdown table.
pub fn doc_table(settings: &[&dyn Declared]) -> String {
    let code = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from("| flag | environment | default | meaning |\n|---|---|---|---|\n");
    for s in settings {
        let flag = if s.flag().starts_with("--") {
            format!("`{}`", s.flag())
        } else {
            String::new()
        };
        let mut env = code(s.env());
        if let Some(k) = s.file_key() {
            env.push_str(&format!("; `switchyard.toml`: `{k}`"));
        }
        let default = s.default_text().unwrap_or_default().replace('|', "\\|");
        let mut meaning = s.help().replace('|', "\\|");
        if !s.more().is_empty() {
            meaning.push_str(". ");
            meaning.push_str(&super::help::sentence(s.more()).replace('|', "\\|"));
        }
        out.push_str(&format!("| {flag} | {env} | {default} | {meaning} |\n"));
    }
    out
}

/// Checks that the block between `<!-- settings: NAME -->` and
/// `<!-- end settings: NAME -->` in the page at `path` is `table`; with
/// `SWITCHYARD_BLESS=1` set, writes it there instead.
pub fn check_doc(path: &std::path::Path, name: &str, table: &str) -> Result<(), String> {
    let page = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let open = format!("<!-- settings: {name} -->\n");
    let close = format!("<!-- end settings: {name} -->");
    let start = page
        .find(&open)
        .ok_or_else(|| format!("{} has no {open:?} marker", path.display()))?
        + open.len();
    let end = start
        + page[start..]
            .find(&close)
            .ok_or_else(|| format!("{} has no {close:?} marker", path.display()))?;
    if page[start..end] == *table {
        return Ok(());
    }
    if std::env::var_os("SWITCHYARD_BLESS").is_some() {
        let updated = format!("{}{table}{}", &page[..start], &page[end..]);
        return std::fs::write(path, updated).map_err(|e| format!("{}: {e}", path.display()));
    }
    Err(format!(
        "{}'s {name} table is not what the declarations say; regenerate it with \
         SWITCHYARD_BLESS=1 cargo test, and commit the page",
        path.display()
    ))
}

/// Checks (or with `SWITCHYARD_BLESS=1`, writes) program `name`'s table in
/// the repository's docs/settings.md.
pub fn settings_page(name: &str, settings: &[&dyn Declared]) -> Result<(), String> {
    let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/settings.md");
    check_doc(&page, name, &doc_table(settings))
        .map_err(|e| e.replace(&page.display().to_string(), "docs/settings.md"))
}
