// `switchyard dashboard` in headless Chromium against a real router, Redis
// and backends: the page lists deployments, follows a promote made from
// another terminal without a reload, draws its charts from real traffic,
// and answers nothing without the token. Leaves a screenshot of the release
// in target/screenshots/dashboard.png.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { BIN, Stack, browser, eventually } from "./stack.mjs";

let chrome;
before(async () => {
  chrome = await browser();
});
after(async () => {
  await chrome?.close();
});

/** Starts `switchyard dashboard` on a free loopback port; returns its printed URL. */
async function dashboard(s) {
  const p = s.spawn(join(BIN, "switchyard"), ["dashboard", "--listen", "127.0.0.1:0"], { REDIS_URL: s.redis });
  return eventually("the dashboard URL", () => (p.output.match(/(http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{32})/) || [])[1]);
}

const rowState = (page, id) =>
  page.evaluate((id) => document.querySelector(`#deployments tr[data-deployment="${id}"]`)?.dataset.state ?? null, id);

test("the dashboard follows a release live and refuses requests without its token", async () => {
  const s = await new Stack().start();
  const ctx = await chrome.newContext({ viewport: { width: 1280, height: 1100 } });
  try {
    const router = await s.router();
    await s.deploy("v1", router);
    const url = await dashboard(s);
    const origin = new URL(url).origin;

    // No token, a wrong one, or the event stream without one: refused.
    for (const path of ["/", "/?token=" + "0".repeat(32), "/events", "/events?token=nope"]) {
      const res = await fetch(origin + path);
      assert.equal(res.status, 401, path);
      assert.match(await res.text(), /token/);
    }
    const ok = await fetch(url);
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get("content-security-policy"), /default-src 'none'/);
    assert.equal(ok.headers.get("referrer-policy"), "no-referrer");

    const page = await ctx.newPage();
    await page.goto(url);
    await page.waitForSelector("#live.live", { timeout: 10000 });
    assert.equal(await rowState(page, "v1"), "active");
    await page.evaluate(() => (window.__sameDocument = true));

    // Real traffic through the router: requests to v1, a few of them 5xx,
    // and WebSockets held open from another tab.
    for (let i = 0; i < 40; i++) await fetch(`${router}/api/${i}`);
    for (let i = 0; i < 4; i++) await fetch(`${router}/status/503`);
    const tab = await ctx.newPage();
    await tab.goto(`${router}/hello`);
    await tab.evaluate(async (n) => {
      window.sockets = [];
      for (let i = 0; i < n; i++) {
        const ws = new WebSocket(location.origin.replace("http", "ws") + "/ws");
        await new Promise((ok, fail) => ((ws.onopen = ok), (ws.onerror = fail)));
        window.sockets.push(ws);
      }
    }, 3);

    // A canary, then a promote, from another terminal.
    await s.deploy("v2", router, false);
    await s.must(["promote", "v2", "--percent", "25"]);
    await eventually("the canary on the page", async () => (await rowState(page, "v2")) === "rollout", 5000);
    for (let i = 0; i < 20; i++) await fetch(`${router}/api/after-${i}`);
    const promoted = Date.now();
    await s.must(["promote", "v2"]);
    await eventually("the promote on the page", async () => (await rowState(page, "v2")) === "active" && (await rowState(page, "v1")) === "draining", 5000);
    assert.ok(Date.now() - promoted < 5000, "shown within 5 s");
    assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload");

    // Charts from the traffic: v1's requests and errors, its open sockets.
    const series = (chart, id) =>
      page.evaluate(
        ([chart, id]) => {
          const g = document.querySelector(`svg[data-chart="${chart}"] g[data-deployment="${id}"]`);
          return g ? { points: Number(g.dataset.points), sum: Number(g.dataset.sum) } : null;
        },
        [chart, id],
      );
    const requests = await eventually("v1's requests charted", async () => {
      const r = await series("requests", "v1");
      return r && r.sum > 0 ? r : null;
    });
    assert.ok(requests.points >= 1);
    await eventually("v1's 5xx share charted", async () => ((await series("errors", "v1"))?.sum ?? 0) > 0);
    await eventually("v1's open WebSockets charted", async () => ((await series("websockets", "v1"))?.sum ?? 0) >= 3);
    await eventually("v2's requests charted", async () => ((await series("requests", "v2"))?.sum ?? 0) > 0);

    // The table's sockets, the routers and the events.
    const v1Sockets = await page.textContent('#deployments tr[data-deployment="v1"] td.num');
    assert.match(v1Sockets, /^3/);
    await page.waitForSelector("#routers tr[data-replica]");
    const journal = await page.textContent("#journal");
    assert.match(journal, /rollout v2 25% of unpinned traffic/);
    assert.match(journal, /promoted v2 v1 drains/);
    assert.match(journal, /router started/);

    const shots = resolve(import.meta.dirname, "../../../target/screenshots");
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, "dashboard.png"), fullPage: true });
  } catch (e) {
    for (const p of s.procs) if (p.output) console.error(p.spawnargs[0], p.output.slice(-2000));
    throw e;
  } finally {
    await ctx.close();
    await s.stop();
  }
});

test("the dashboard says so when the store is gone, and comes back with it", async () => {
  const s = await new Stack().start();
  const ctx = await chrome.newContext();
  try {
    const router = await s.router();
    await s.deploy("v1", router);
    const url = await dashboard(s);
    const page = await ctx.newPage();
    await page.goto(url);
    await page.waitForSelector('#deployments tr[data-deployment="v1"]');
    const redis = s.procs[0];
    redis.kill("SIGKILL");
    await page.waitForSelector("#banner .error", { timeout: 10000 });
    // The last view stays on the page while the store is away.
    assert.equal(await rowState(page, "v1"), "active");
    s.spawn("redis-server", ["--port", String(s.redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir]);
    // A store that came back empty is shown as it is, not as an error.
    await page.waitForSelector("#banner .ok", { timeout: 15000 });
  } finally {
    await ctx.close();
    await s.stop();
  }
});
