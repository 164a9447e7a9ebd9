//! The docs stay true to the CLI: every `switchyard ...` command in a code
//! block of the README or `docs/` names a subcommand that exists and only
//! flags that subcommand accepts (its `--help` lists them). Commands that
//! need Railway or a running stack cannot run here; their shape can be
//! checked, and `cli.rs` runs the static-platform walkthrough for real.

#![allow(clippy::unwrap_used)]

use std::{path::Path, process::Command};

fn commands_in(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut in_code = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let line = line.split(" #").next().unwrap_or_default().trim_end();
        let line = line.trim_start().trim_start_matches("$ ");
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        if full.starts_with("switchyard ") {
            out.push(full);
        }
    }
    out
}

fn help(args: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn every_documented_command_names_real_subcommands_and_flags() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for command in commands_in(&text) {
            let words: Vec<&str> = command.split_whitespace().skip(1).collect();
            // The subcommand: the first word that is not a flag or the value
            // of a global flag before it.
            let mut sub = None;
            let mut skip = false;
            for w in &words {
                if skip {
                    skip = false;
                } else if w.starts_with("--") {
                    skip = !w.contains('=');
                } else {
                    sub = Some(*w);
                    break;
                }
            }
            let sub =
                sub.unwrap_or_else(|| panic!("{}: no subcommand in `{command}`", file.display()));
            let text = help(&[sub]).unwrap_or_else(|e| {
                panic!(
                    "{}: `{command}`: `switchyard {sub}` does not exist: {e}",
                    file.display()
                )
            });
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                let flag = flag.split('=').next().unwrap_or_default();
                assert!(
                    text.contains(&format!("{flag} "))
                        || text.contains(&format!("{flag}\n"))
                        || text.contains(&format!("{flag}="))
                        || text.contains(&format!("{flag},")),
                    "{}: `{command}`: `switchyard {sub}` has no {flag}",
                    file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} documented commands found");
}
