// The real stack for browser tests: redis-server, the router binary, test
// backends and the switchyard CLI, each on a free loopback port, all
// stopped by `stop()`. Binaries come from the workspace's target/debug
// (built by `cargo test`), or SWITCHYARD_BIN_DIR.
import { spawn, execFile } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { request as httpRequest, createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
export const BIN = process.env.SWITCHYARD_BIN_DIR || resolve(import.meta.dirname, "../../../target/debug");

export async function freePort() {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const { port } = srv.address();
  srv.close();
  await once(srv, "close");
  return port;
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function eventually(what, check, ms = 15000) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

export class Stack {
  procs = [];
  servers = [];
  /** Extra environment for the CLI (a strict stack's pin secret). */
  cliEnv = {};
  dir = mkdtempSync(join(tmpdir(), "switchyard-browser-"));

  async start() {
    this.redisPort = await freePort();
    this.redis = `redis://127.0.0.1:${this.redisPort}/`;
    this.spawn("redis-server", ["--port", String(this.redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.dir]);
    await eventually("redis", async () => (await this.cli(["status", "--json"])).ok);
    this.backends = {};
    return this;
  }

  spawn(cmd, args, env = {}) {
    const p = spawn(cmd, args, { env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    p.output = "";
    p.stdout.on("data", (d) => (p.output += d));
    p.stderr.on("data", (d) => (p.output += d));
    this.procs.push(p);
    return p;
  }

  /** A router binary on its own port; `env` adds settings. */
  async router(env = {}) {
    const port = await freePort();
    const p = this.spawn(join(BIN, "switchyard-router"), [], {
      REDIS_URL: this.redis,
      SWITCHYARD_LISTEN: `127.0.0.1:${port}`,
      SWITCHYARD_METRICS_LISTEN: "off",
      SWITCHYARD_RELOAD_INTERVAL: "500ms",
      SWITCHYARD_HEARTBEAT_INTERVAL: "200ms",
      SWITCHYARD_LEASE_TTL: "2s",
      SWITCHYARD_SHUTDOWN_TIMEOUT: "2s",
      ...env,
    });
    const url = `http://127.0.0.1:${port}`;
    await eventually("router", async () => (await fetch(`${url}/healthz`)).ok);
    p.url = url;
    return url;
  }

  /** A test backend process named `name`; returns its URL. */
  async backend(name) {
    const p = this.spawn(join(BIN, "switchyard-test-backend"), [name]);
    const url = await eventually(`backend ${name}`, () => (p.output.match(/listening on (\S+)/) || [])[1]);
    this.backends[name] = url;
    return url;
  }

  async cli(args) {
    try {
      const { stdout, stderr } = await run(join(BIN, "switchyard"), args, {
        env: { PATH: process.env.PATH, REDIS_URL: this.redis, ...this.cliEnv },
      });
      return { ok: true, stdout, stderr };
    } catch (e) {
      return { ok: false, stdout: e.stdout, stderr: e.stderr, code: e.code };
    }
  }

  async must(args) {
    const r = await this.cli(args);
    if (!r.ok) throw new Error(`switchyard ${args.join(" ")} failed: ${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  /** Deploys backend `name` by URL; promotes unless `promote` is false. */
  async deploy(name, router, promote = true) {
    const url = this.backends[name] || (await this.backend(name));
    const args = ["deploy", "--url", url, "--deployment-id", name, "--health-path", "/", "--router-url", router];
    if (!promote) args.push("--no-promote");
    await this.must(args);
  }

  /**
   * A reverse proxy in front of `router` that serves it under `prefix` and
   * strips the prefix on the way (as an ingress path rule does).
   */
  async prefixProxy(router, prefix) {
    const target = new URL(router);
    const server = createHttpServer((req, res) => {
      if (!req.url.startsWith(prefix + "/")) {
        res.writeHead(404).end("not under " + prefix);
        return;
      }
      const up = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url.slice(prefix.length), headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode, r.headers);
          r.pipe(res);
        },
      );
      up.on("error", () => res.destroy());
      req.pipe(up);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    this.servers.push(server);
    return `http://127.0.0.1:${server.address().port}${prefix}`;
  }

  async stop() {
    for (const s of this.servers) s.close();
    for (const p of this.procs.reverse()) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill("SIGKILL");
        await once(p, "exit").catch(() => {});
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Headless Debian Chromium (no browser download: playwright-core only). */
export async function browser() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
