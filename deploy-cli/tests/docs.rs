//! The docs stay true to the CLI: every `switchyard ...` command in a code
//! block of the README or `docs/` names a subcommand that exists and only
//! flags that subcommand accepts (its `--help` lists them). Commands that
//! need Railway or a running stack cannot run here; their shape can be
//! checked. The README's static-platform walkthrough is run for real, line
//! by line in one shell, as a newcomer would paste it.

#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc::{Receiver, channel},
    time::{Duration, Instant},
};

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
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
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

/// One `bash` fed a line at a time on stdin, the way a terminal would be,
/// so `export`, `cd` and background jobs carry from line to line. After
/// each line it echoes a marker with the line's exit status.
struct Shell {
    child: Child,
    stdin: ChildStdin,
    output: Receiver<String>,
    transcript: String,
}

const DONE: &str = "@@walkthrough-line-done ";

impl Shell {
    fn start(cwd: &Path, tmp: &Path) -> Self {
        let mut cmd = Command::new("bash");
        cmd.args(["--norc", "--noprofile", "-s"])
            .current_dir(cwd)
            .env("TMPDIR", tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group: a failed run kills every job it
            // started, not only bash.
            .process_group(0);
        // Nothing from the caller's stack may leak in: the walkthrough sets
        // what it needs itself.
        for (key, _) in std::env::vars() {
            if ["SWITCHYARD_", "REDIS_", "PULSE_", "RAILWAY_"]
                .iter()
                .any(|p| key.starts_with(p))
            {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, output) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut shell = Shell {
            child,
            stdin,
            output,
            transcript: String::new(),
        };
        shell.run("exec 2>&1", Duration::from_secs(5));
        shell
    }

    /// Runs one line; returns its exit status and output.
    fn run(&mut self, line: &str, timeout: Duration) -> (i32, String) {
        // The marker on a line of its own, even after output with no
        // final newline (curl's).
        writeln!(self.stdin, "{line}\n__rc=$?; echo; echo \"{DONE}$__rc\"").unwrap();
        self.stdin.flush().unwrap();
        self.transcript.push_str(&format!("$ {line}\n"));
        let deadline = Instant::now() + timeout;
        let mut out = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(got) = self.output.recv_timeout(left) else {
                panic!(
                    "`{line}` did not finish within {timeout:?}\n{}{out}",
                    self.transcript
                );
            };
            if let Some(code) = got.strip_prefix(DONE) {
                self.transcript.push_str(&out);
                return (code.trim().parse().unwrap_or(-1), out);
            }
            out.push_str(&got);
            out.push('\n');
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// The shell block after the README's walkthrough marker.
fn walkthrough(readme: &str) -> String {
    let marker = "<!-- walkthrough: deploy-cli/tests/docs.rs runs this block -->";
    let after = &readme[readme.find(marker).expect("walkthrough marker in README")..];
    let start = after.find("```sh\n").unwrap() + "```sh\n".len();
    let end = after[start..].find("```").unwrap();
    after[start..start + end].to_string()
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut block = walkthrough(&readme);
    // The walkthrough's fixed ports, moved to free ones so it runs beside
    // anything else on this machine.
    for port in ["6391", "8000", "9001", "9002", "9091"] {
        block = block.replace(port, &switchyard_testkit::free_port().to_string());
    }
    let tmp = std::env::temp_dir().join(format!("switchyard-walkthrough-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut shell = Shell::start(&root, &tmp);
    let mut ran = 0;
    for line in block.lines() {
        let command = line.split(" #").next().unwrap_or_default().trim();
        if command.is_empty() || command.starts_with('#') {
            continue;
        }
        // `# → TEXT` is what the line prints once the stack is ready; the
        // line is repeated until it does (a background start may still be
        // binding its port), within a deadline.
        let expect = line
            .split_once("# → ")
            .map(|(_, e)| e.split("  (").next().unwrap_or_default().trim().to_string());
        let timeout = if command.starts_with("cargo ") {
            Duration::from_secs(900)
        } else {
            Duration::from_secs(120)
        };
        match expect {
            None => {
                let (code, out) = shell.run(line, timeout);
                assert_eq!(code, 0, "`{command}` failed:\n{}{out}", shell.transcript);
            }
            Some(expect) => {
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let (_, out) = shell.run(line, timeout);
                    if out.contains(&expect) {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "`{command}` never printed {expect:?}:\n{}",
                        shell.transcript
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        ran += 1;
    }
    assert!(ran >= 15, "only {ran} walkthrough lines found");
    // The teardown line stopped every job it started.
    let (_, jobs) = shell.run("sleep 0.5; jobs -r", Duration::from_secs(10));
    assert!(
        jobs.trim().is_empty(),
        "still running after teardown: {jobs}"
    );
    drop(shell);
    let _ = std::fs::remove_dir_all(&tmp);
}
