//! Packing a build context into the gzip-compressed tar Railway builds.
//!
//! What goes in is what `docker build` and `railway up` would send: the
//! context minus what `.gitignore`, `.railwayignore` (both at any depth,
//! with git's rules) and the root `.dockerignore` (Docker's rules: every
//! pattern is relative to the context root) exclude. `.git`, `target`,
//! `node_modules` and `.env*` are left out unless asked: they are large or
//! secret and never what a build needs. Indexing is separate from packing
//! so an oversized context fails before anything is compressed, uploaded
//! or created.

use std::{
    fs::File,
    io::{self, Read},
    path::{Path, PathBuf},
    sync::Arc,
};

use ignore::{
    WalkBuilder,
    gitignore::{Gitignore, GitignoreBuilder},
};
use switchyard_core::config::human_bytes;

use crate::progress::Progress;

#[derive(Debug, Clone)]
pub struct Options {
    pub root: PathBuf,
    /// Must be inside the context; packed even when an ignore file names it.
    pub dockerfile: Option<PathBuf>,
    /// Honour `.gitignore` files.
    pub gitignore: bool,
    /// Leave out `.git`, `target`, `node_modules` and `.env*`.
    pub default_excludes: bool,
}

/// Names never packed unless asked: repository history, build output,
/// installed dependencies, local secrets.
fn default_excluded(name: &str, is_dir: bool) -> bool {
    (is_dir && matches!(name, ".git" | "target" | "node_modules")) || name.starts_with(".env")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
}

#[derive(Debug, Clone)]
struct Entry {
    /// Path inside the archive, `/`-separated, relative to the root.
    rel: String,
    kind: Kind,
    size: u64,
}

/// The files of a context, found but not yet read.
#[derive(Debug)]
pub struct Index {
    root: PathBuf,
    entries: Vec<Entry>,
    /// Sum of regular file sizes.
    pub total: u64,
    /// The Dockerfile's path inside the archive, when one was given.
    pub dockerfile: Option<String>,
}

fn rel_path(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Docker's ignore rules as git's: Docker anchors every pattern at the
/// context root, so each is given a leading `/`.
fn dockerignore(root: &Path) -> Result<Option<Gitignore>, String> {
    let path = root.join(".dockerignore");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut builder = GitignoreBuilder::new(root);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (negate, pattern) = match line.strip_prefix('!') {
            Some(p) => ("!", p.trim()),
            None => ("", line),
        };
        let pattern = pattern.trim_start_matches("./").trim_start_matches('/');
        builder
            .add_line(Some(path.clone()), &format!("{negate}/{pattern}"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `--dockerfile` as Docker reads it (relative to the working directory),
/// or, when nothing is there, relative to the context as Railway reads it.
pub fn resolve_dockerfile(context: &Path, path: &Path) -> PathBuf {
    if path.is_relative() && !path.exists() && context.join(path).exists() {
        context.join(path)
    } else {
        path.to_path_buf()
    }
}

/// Finds what to pack.
pub fn index(opts: &Options) -> Result<Index, String> {
    let root = std::fs::canonicalize(&opts.root)
        .map_err(|e| format!("build context {}: {e}", opts.root.display()))?;
    if !root.is_dir() {
        return Err(format!(
            "build context {} is not a directory",
            opts.root.display()
        ));
    }
    let dockerfile = match &opts.dockerfile {
        None => None,
        Some(path) => {
            let abs = std::fs::canonicalize(resolve_dockerfile(&opts.root, path))
                .map_err(|e| format!("--dockerfile {}: {e}", path.display()))?;
            Some(rel_path(&root, &abs).ok_or_else(|| {
                format!(
                    "--dockerfile {} is outside the build context {}; Railway builds from the uploaded context only",
                    path.display(),
                    root.display()
                )
            })?)
        }
    };
    let docker = dockerignore(&root)?.map(Arc::new);

    let mut walk = WalkBuilder::new(&root);
    walk.hidden(false)
        .parents(false)
        .ignore(false)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .git_ignore(opts.gitignore)
        .follow_links(false)
        .add_custom_ignore_filename(".railwayignore")
        .sort_by_file_name(|a, b| a.cmp(b));
    let filter_root = root.clone();
    let default_excludes = opts.default_excludes;
    walk.filter_entry(move |e| {
        let is_dir = e.file_type().is_some_and(|t| t.is_dir());
        if e.depth() == 0 {
            return true;
        }
        if default_excludes && default_excluded(&e.file_name().to_string_lossy(), is_dir) {
            return false;
        }
        match (&docker, e.path().strip_prefix(&filter_root)) {
            (Some(d), Ok(rel)) => !d.matched_path_or_any_parents(rel, is_dir).is_ignore(),
            _ => true,
        }
    });

    let mut entries = Vec::new();
    let mut total = 0u64;
    for item in walk.build() {
        let item = item.map_err(|e| format!("reading the build context: {e}"))?;
        if item.depth() == 0 {
            continue;
        }
        let Some(rel) = rel_path(&root, item.path()) else {
            continue;
        };
        let Some(ft) = item.file_type() else { continue };
        let (kind, size) = if ft.is_symlink() {
            (Kind::Symlink, 0)
        } else if ft.is_dir() {
            (Kind::Dir, 0)
        } else if ft.is_file() {
            let meta = item
                .metadata()
                .map_err(|e| format!("reading the build context: {e}"))?;
            (Kind::File, meta.len())
        } else {
            // Sockets, fifos, devices: nothing a build can use.
            continue;
        };
        total += size;
        entries.push(Entry { rel, kind, size });
    }
    if let Some(df) = &dockerfile
        && !entries.iter().any(|e| &e.rel == df)
    {
        let size = std::fs::metadata(root.join(df))
            .map_err(|e| format!("--dockerfile {df}: {e}"))?
            .len();
        total += size;
        entries.push(Entry {
            rel: df.clone(),
            kind: Kind::File,
            size,
        });
    }
    Ok(Index {
        root,
        entries,
        total,
        dockerfile,
    })
}

impl Index {
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn files(&self) -> usize {
        self.entries.iter().filter(|e| e.kind != Kind::Dir).count()
    }

    /// Every packed path, for `--dry-run` style listings and tests.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.rel.as_str())
    }

    /// Fails, naming the biggest things in the context, when it is over
    /// `limit` bytes.
    pub fn check_limit(&self, limit: u64) -> Result<(), String> {
        if self.total <= limit {
            return Ok(());
        }
        let mut top: std::collections::BTreeMap<String, u64> = Default::default();
        for e in self.entries.iter().filter(|e| e.kind != Kind::Dir) {
            let first = match e.rel.split_once('/') {
                Some((dir, _)) => format!("{dir}/"),
                None => e.rel.clone(),
            };
            *top.entry(first).or_default() += e.size;
        }
        let mut top: Vec<(String, u64)> = top.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut files: Vec<&Entry> = self.entries.iter().filter(|e| e.size > 0).collect();
        files.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.rel.cmp(&b.rel)));
        let mut msg = format!(
            "the build context {} is {}, over the {} limit (--max-context-size / SWITCHYARD_MAX_CONTEXT_SIZE); nothing was uploaded or created.\nLargest entries:",
            self.root.display(),
            human_bytes(self.total),
            human_bytes(limit),
        );
        for (path, size) in top.iter().take(5) {
            msg.push_str(&format!("\n  {:>10}  {path}", human_bytes(*size)));
        }
        msg.push_str("\nLargest files:");
        for e in files.iter().take(5) {
            msg.push_str(&format!("\n  {:>10}  {}", human_bytes(e.size), e.rel));
        }
        msg.push_str("\nExclude what the build does not need in .railwayignore or .dockerignore, or raise the limit.");
        Err(msg)
    }

    /// Writes the gzip-compressed tar, counting file bytes read on
    /// `progress`. Headers are deterministic (no owners, fixed times) so the
    /// same context gives the same archive.
    pub fn pack(&self, progress: &Progress) -> io::Result<Vec<u8>> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.mode(tar::HeaderMode::Deterministic);
        tar.follow_symlinks(false);
        for e in &self.entries {
            let path = self.root.join(&e.rel);
            match e.kind {
                Kind::Dir | Kind::Symlink => tar.append_path_with_name(&path, &e.rel)?,
                Kind::File => {
                    let file = File::open(&path)?;
                    let meta = file.metadata()?;
                    let mut header = tar::Header::new_gnu();
                    header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
                    let reader = Counted {
                        inner: file.take(meta.len()),
                        progress,
                    };
                    tar.append_data(&mut header, &e.rel, reader)?;
                }
            }
        }
        tar.into_inner()?.finish()
    }
}

struct Counted<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn tree(files: &[(&str, &str)]) -> PathBuf {
        use rand::Rng;
        let root =
            std::env::temp_dir().join(format!("switchyard-pack-{:x}", rand::rng().random::<u64>()));
        for (path, body) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        root
    }

    fn opts(root: &Path) -> Options {
        Options {
            root: root.to_path_buf(),
            dockerfile: None,
            gitignore: true,
            default_excludes: true,
        }
    }

    fn files(index: &Index) -> Vec<&str> {
        index
            .entries
            .iter()
            .filter(|e| e.kind != Kind::Dir)
            .map(|e| e.rel.as_str())
            .collect()
    }

    #[test]
    fn ignore_files_and_default_excludes_apply() {
        let root = tree(&[
            ("Dockerfile", "FROM scratch"),
            ("app/main.py", "print(1)"),
            ("app/cache.pyc", "x"),
            ("app/.gitignore", "*.pyc\n"),
            (".railwayignore", "docs/\n"),
            ("docs/big.md", "x"),
            (".dockerignore", "# comment\nsecrets\n*.log\n!keep.log\n"),
            ("secrets/key", "k"),
            ("nested/secrets/ok", "y"),
            ("debug.log", "l"),
            ("keep.log", "l"),
            ("sub/debug.log", "l"),
            (".git/HEAD", "ref"),
            ("target/debug/app", "bin"),
            ("web/node_modules/x/index.js", "js"),
            (".env", "SECRET=1"),
            (".env.local", "SECRET=2"),
        ]);
        let index = index(&opts(&root)).unwrap();
        assert_eq!(
            files(&index),
            [
                ".dockerignore",
                ".railwayignore",
                "Dockerfile",
                "app/.gitignore",
                "app/main.py",
                "keep.log",
                "nested/secrets/ok",
                "sub/debug.log",
            ]
        );
        std::fs::remove_dir_all(root).ok();
    }

    #[test]
    fn defaults_can_be_packed_when_asked_and_the_dockerfile_always_is() {
        let root = tree(&[
            (".env", "A=1"),
            ("target/x", "x"),
            ("build/Dockerfile.prod", "FROM scratch"),
            (".gitignore", "build/\n"),
        ]);
        let mut o = opts(&root);
        o.default_excludes = false;
        o.dockerfile = Some(root.join("build/Dockerfile.prod"));
        let index = index(&o).unwrap();
        let f = files(&index);
        assert!(f.contains(&".env") && f.contains(&"target/x"), "{f:?}");
        assert!(f.contains(&"build/Dockerfile.prod"), "{f:?}");
        assert_eq!(index.dockerfile.as_deref(), Some("build/Dockerfile.prod"));
        std::fs::remove_dir_all(root).ok();
    }

    #[test]
    fn a_dockerfile_outside_the_context_or_a_missing_context_is_refused() {
        let root = tree(&[("app/a", "a")]);
        let mut o = opts(&root.join("app"));
        o.dockerfile = Some(root.join("app/../Dockerfile"));
        std::fs::write(root.join("Dockerfile"), "FROM scratch").unwrap();
        assert!(index(&o).unwrap_err().contains("outside the build context"));
        let err = index(&opts(&root.join("nope"))).unwrap_err();
        assert!(err.contains("nope"), "{err}");
        std::fs::remove_dir_all(root).ok();
    }

    #[test]
    fn over_the_limit_names_the_largest_entries() {
        let big = "x".repeat(4000);
        let root = tree(&[("data/a.bin", &big), ("data/b.bin", &big), ("main.py", "1")]);
        let index = index(&opts(&root)).unwrap();
        assert!(index.check_limit(1 << 20).is_ok());
        let err = index.check_limit(1000).unwrap_err();
        assert!(err.contains("7.81 KiB") && err.contains("1000 B"), "{err}");
        assert!(err.contains("data/") && err.contains("data/a.bin"), "{err}");
        std::fs::remove_dir_all(root).ok();
    }

    #[test]
    fn the_archive_is_a_gzip_tar_of_the_index() {
        let root = tree(&[("Dockerfile", "FROM scratch"), ("src/lib.rs", "fn x() {}")]);
        let index = index(&opts(&root)).unwrap();
        let progress = Progress::new("packing", index.total, false);
        let bytes = index.pack(&progress).unwrap();
        assert_eq!(progress.done(), index.total);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            if name == "src/lib.rs" {
                let mut body = String::new();
                entry.read_to_string(&mut body).unwrap();
                assert_eq!(body, "fn x() {}");
            }
            names.push(name);
        }
        assert_eq!(names, ["Dockerfile", "src", "src/lib.rs"]);
        // Deterministic: the same context packs to the same bytes.
        assert_eq!(bytes, index.pack(&progress).unwrap());
        std::fs::remove_dir_all(root).ok();
    }
}
