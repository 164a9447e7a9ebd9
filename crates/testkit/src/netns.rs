//! Several hosts on one machine: network namespaces on a bridge, each with
//! one address, processes run inside them with their output kept, and
//! `tc` for shaping a host's link. Needs root and `ip`; everything made is
//! torn down on drop.

use std::{
    net::Ipv4Addr,
    path::PathBuf,
    process::{Child, Command},
};

/// Runs a command to completion; its stderr on failure.
pub fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces and the bridge joining them; torn down on drop.
pub struct Net {
    tag: String,
    subnet: u8,
    spaces: Vec<String>,
    /// Where the hosts' logs and files go (removed on drop).
    pub dir: PathBuf,
}

impl Net {
    /// A bridge for a new set of namespaces; `label` names its log folder.
    pub fn new(label: &str) -> Result<Self, String> {
        let pid = std::process::id();
        let tag = format!("sy{}", pid % 100_000);
        let dir = std::env::temp_dir().join(format!("switchyard-{label}-{pid}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let net = Self {
            subnet: (pid % 200 + 20) as u8,
            spaces: vec![],
            dir,
            tag,
        };
        let bridge = net.bridge();
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        run(
            "ip",
            &["addr", "add", &format!("{}/24", net.ip(1)), "dev", &bridge],
        )?;
        run("ip", &["link", "set", &bridge, "up"])?;
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    pub fn ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, host)
    }

    /// A namespace with one interface on the bridge at `.host`.
    pub fn host(&mut self, name: &str, host: u8) -> Result<String, String> {
        let ns = format!("{}-{name}", self.tag);
        run("ip", &["netns", "add", &ns])?;
        self.spaces.push(ns.clone());
        let outside = format!("{}v{host}", self.tag);
        run(
            "ip",
            &[
                "link", "add", &outside, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
        )?;
        run(
            "ip",
            &["link", "set", &outside, "master", &self.bridge(), "up"],
        )?;
        let addr = format!("{}/24", self.ip(host));
        run("ip", &["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
        run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A process inside `ns`, logging to a file named `name`.
    pub fn spawn(
        &self,
        ns: &str,
        name: &str,
        program: &str,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Proc {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))
            .expect("a log file in the fleet folder");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(log.try_clone().expect("the log file, twice"))
            .stderr(log)
            .spawn()
            .expect("ip netns exec starts");
        Proc {
            child: Some(child),
            name: name.into(),
            log: self.dir.join(format!("{name}.log")),
        }
    }

    /// Runs `tc` inside `ns`.
    pub fn tc(&self, ns: &str, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["netns", "exec", ns, "tc"];
        all.extend_from_slice(args);
        run("ip", &all)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in &self.spaces {
            let _ = run("ip", &["netns", "del", ns]);
        }
        let _ = run("ip", &["link", "del", &self.bridge()]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Proc {
    child: Option<Child>,
    name: String,
    log: PathBuf,
}

impl Proc {
    /// A process started outside the namespaces (say, a load balancer on
    /// the host), killed on drop like the others; its log, if any, at `log`.
    pub fn adopt(child: Child, name: &str, log: PathBuf) -> Self {
        Self {
            child: Some(child),
            name: name.into(),
            log,
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "--- {} ---\n{}",
            self.name,
            lines[lines.len().saturating_sub(15)..].join("\n")
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether network namespaces can be made here (root, `ip`).
pub fn available() -> Result<(), String> {
    let probe = format!("syprobe{}", std::process::id());
    run("ip", &["netns", "add", &probe])
        .map_err(|e| format!("cannot make network namespaces here ({e})"))?;
    let _ = run("ip", &["netns", "del", &probe]);
    Ok(())
}
