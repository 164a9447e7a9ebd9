// The client's pure decisions, with node's test runner.
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildSync } from "esbuild";

// The pure decisions are internal (the package exports only its public
// API), so they are built from source for these tests.
const core = buildSync({ entryPoints: [new URL("../src/core.ts", import.meta.url).pathname], bundle: true, format: "esm", write: false });
const { DEFAULT_NAMES, backoff, isStale, jitter, parseReloaded, reconnects, reloadWait, targets, timing, withPin, withoutPin } = await import(
  "data:text/javascript;base64," + Buffer.from(core.outputFiles[0].text).toString("base64")
);

test("the pin comes from the router's Server-Timing label", () => {
  const entries = [
    { name: "db", description: "" },
    { name: "switchyard-pin", description: "web-3f9a1c" },
    { name: "switchyard-active", description: "web-77aa00" },
  ];
  assert.equal(timing(entries, "switchyard-pin"), "web-3f9a1c");
  assert.equal(timing(entries, "switchyard-active"), "web-77aa00");
  assert.equal(timing([], "switchyard-pin"), null);
  assert.equal(timing(undefined, "switchyard-pin"), null);
});

test("only same-origin and allow-listed requests are stamped", () => {
  const origin = "https://app.example";
  assert.ok(targets(new URL("https://app.example/api"), origin, []));
  assert.ok(!targets(new URL("https://cdn.example/x.js"), origin, []));
  assert.ok(!targets(new URL("http://app.example/api"), origin, []), "another scheme is another origin");
  assert.ok(targets(new URL("https://api.example/v1"), origin, ["https://api.example"]));
  assert.ok(targets(new URL("wss://app.example/ws"), origin, []), "a socket to the page's host");
  assert.ok(!targets(new URL("ws://app.example/ws"), origin, []), "but not over another scheme");
});

test("query pins replace, and the reload URL keeps query and hash", () => {
  const u = withPin(new URL("wss://app.example/ws?room=1&pulse_deployment=old"), "new", DEFAULT_NAMES);
  assert.equal(u.href, "wss://app.example/ws?room=1&pulse_deployment=new");
  assert.equal(
    withoutPin("https://app.example/p?x=1&pulse_deployment=old#sec", DEFAULT_NAMES),
    "https://app.example/p?x=1#sec",
  );
  const plain = "https://app.example/p?x=1#sec";
  assert.equal(withoutPin(plain, DEFAULT_NAMES), plain);
});

test("a stale answer is a 409 with the stale header, nothing else", () => {
  const h = (v) => (name) => (name === "x-pulse-stale-affinity" ? v : null);
  assert.ok(isStale(409, h("1")));
  assert.ok(!isStale(409, h(null)), "an app's own 409 is not stale affinity");
  assert.ok(!isStale(200, h("1")));
});

test("close codes: reconnect after restarts and losses, not after a clean close", () => {
  for (const c of [1001, 1006, 1011, 1013]) assert.ok(reconnects(c), String(c));
  for (const c of [1000, 1008, 1012, 4000]) assert.ok(!reconnects(c), String(c));
});

test("jitter and backoff stay inside their windows", () => {
  assert.equal(jitter(2000, 0), 0);
  assert.equal(jitter(2000, 0.5), 1000);
  assert.ok(jitter(2000, 0.9999) < 2000);
  assert.equal(jitter(-5, 0.5), 0);
  assert.ok(backoff(0, 250, 30000, 0.9999) < 250);
  assert.ok(backoff(20, 250, 30000, 0.9999) < 30000, "capped");
});

test("the loop guard holds back only the pin that just reloaded, and only for its window", () => {
  assert.equal(reloadWait(null, "v3", 1000, 60000), 0, "first stale: reload");
  const last = { pin: "v3", at: 1000 };
  assert.equal(reloadWait(last, "v3", 30000, 60000), 31000, "the same pin again at once: wait out the window");
  assert.equal(reloadWait(last, "v3", 61000, 60000), 0, "after the window: retry");
  assert.equal(reloadWait(last, "v4", 2000, 60000), 0, "another pin (a second revoke): reload at once");
  assert.deepEqual(parseReloaded(JSON.stringify(last)), last);
  assert.deepEqual(parseReloaded("1000"), { pin: null, at: 1000 }, "an older client's bare time");
  assert.equal(parseReloaded("{oops"), null);
  assert.equal(parseReloaded(null), null);
});

test("the package's types resolve under node16, nodenext and bundler, events typed", async () => {
  const { mkdtempSync, mkdirSync, symlinkSync, writeFileSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join, resolve } = await import("node:path");
  const { execFileSync } = await import("node:child_process");
  const dir = mkdtempSync(join(tmpdir(), "switchyard-types-"));
  try {
    mkdirSync(join(dir, "node_modules/@switchyard"), { recursive: true });
    symlinkSync(resolve(import.meta.dirname, ".."), join(dir, "node_modules/@switchyard/browser"));
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(
      join(dir, "app.ts"),
      [
        'import { install, Client, type SwitchyardEventMap } from "@switchyard/browser";',
        'import "@switchyard/browser/script";',
        "const client: Client = install({ loopGuardMs: 30000 });",
        'client.addEventListener("update-available", (e) => { const k: "newer" | "rollback" = e.detail.kind; console.log(k, e.detail.to); });',
        'client.addEventListener("pinned", (e) => console.log(e.detail.pin.toUpperCase(), e.detail.source));',
        "const fromGlobal: Client | undefined = window.switchyard;",
        "const d: SwitchyardEventMap[\"stale\"] = { reason: \"x\", pin: null };",
        "client.dispose();",
        "export { fromGlobal, d };",
      ].join("\n"),
    );
    const tsc = resolve(import.meta.dirname, "../node_modules/typescript/bin/tsc");
    for (const [module, resolution] of [["node16", "node16"], ["nodenext", "nodenext"], ["esnext", "bundler"]]) {
      execFileSync(process.execPath, [tsc, "--noEmit", "--strict", "--lib", "es2020,dom", "--module", module, "--moduleResolution", resolution, join(dir, "app.ts")], {
        cwd: dir,
        stdio: "pipe",
      });
    }
  } catch (e) {
    assert.fail(String(e.stdout || e));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("importing and installing during server-side rendering does nothing", async () => {
  const pkg = await import("../dist/index.js");
  assert.deepEqual(Object.keys(pkg).sort(), ["Client", "current", "install"], "only the public API");
  const client = pkg.install();
  assert.equal(client.pin, null);
  assert.equal(pkg.current(), undefined, "nothing patched on the server");
  await client.check();
  client.dispose();
});
