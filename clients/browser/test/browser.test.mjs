// The browser client in headless Chromium (Debian's, driven by
// playwright-core), through the real router binary, real test backends and
// Redis, with the CLI promoting and revoking as an operator would.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { Stack, browser, eventually } from "./stack.mjs";

let chrome;
before(async () => {
  chrome = await browser();
});
after(async () => {
  await chrome?.close();
});

/** A stack with v1 active behind one router (env: router settings). */
async function withV1(body, env = {}) {
  const s = await new Stack().start();
  if (env.SWITCHYARD_PIN_SECRET) s.cliEnv.SWITCHYARD_PIN_SECRET = env.SWITCHYARD_PIN_SECRET;
  try {
    const router = await s.router(env);
    await s.deploy("v1", router);
    const ctx = await chrome.newContext();
    try {
      await body({ s, router, ctx });
    } finally {
      await ctx.close();
    }
  } catch (e) {
    for (const p of s.procs) if (p.output) console.error(p.spawnargs[0], p.output.slice(-2000));
    throw e;
  } finally {
    await s.stop();
  }
}

const look = (page) =>
  page.evaluate(() => ({
    served: document.getElementById("served").textContent,
    loads: JSON.parse(sessionStorage.getItem("loads")),
    loaded: JSON.parse(sessionStorage.getItem("loaded")),
    events: JSON.parse(sessionStorage.getItem("events") || "[]").map((e) => e[0]),
    href: location.href,
  }));

/** Fails if `check` stops holding during `ms` (an observation, not a wait for something to happen). */
async function holds(what, check, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    assert.ok(await check(), what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const served = (page, id) =>
  page.waitForFunction((want) => document.getElementById("served")?.textContent === want, id, { timeout: 15000 });

/** Makes the page's next request learn whether its pin went stale. */
const poke = (page) => page.evaluate(() => fetch("/api").then((r) => r.status)).catch(() => "navigated");

/**
 * Pokes until the router calls the pin stale: the CLI returns once the
 * store has the change, and the router hears of it a moment later.
 */
const pokeUntilStale = (page) =>
  eventually("the router to call the pin stale", async () => {
    const status = await poke(page);
    return status === 409 || status === "navigated";
  });

test("a v1 page keeps fetch, XHR, WebSocket and EventSource on v1 after v2 is promoted", () =>
  withV1(async ({ s, router, ctx }) => {
    const page = await ctx.newPage();
    await page.goto(`${router}/page`);
    assert.equal(await page.evaluate(() => switchyard.pin), "v1", "pin learnt from Server-Timing");
    await s.deploy("v2", router);
    assert.deepEqual(await page.evaluate(() => probe()), {
      fetched: "v1",
      xhr: "v1",
      ws: "hello from v1",
      es: "v1",
    });
    await eventually("update-available", async () => (await look(page)).events.includes("update-available"));
    const fresh = await ctx.newPage();
    await fresh.goto(`${router}/page`);
    assert.equal(await fresh.textContent("#served"), "v2", "a new page lands on the active deployment");
    // Tabs keep their own pins.
    assert.equal(await page.evaluate(() => switchyard.pin), "v1");
    assert.equal(await fresh.evaluate(() => switchyard.pin), "v2");
    mkdirSync("test-results", { recursive: true });
    await page.screenshot({ path: "test-results/pinned-page.png" });
  }));

test("revoking v1 reloads the page exactly once, onto v2, with its URL intact", () =>
  withV1(async ({ s, router, ctx }) => {
    const page = await ctx.newPage();
    await page.goto(`${router}/page?x=1#frag`);
    await s.deploy("v2", router);
    await s.must(["revoke", "v1", "--yes"]);
    await pokeUntilStale(page);
    await served(page, "v2");
    const after = await look(page);
    assert.equal(after.loads, 2);
    assert.equal(after.href, `${router}/page?x=1#frag`);
    assert.deepEqual(after.events.slice(0, 3), ["pinned", "stale", "reload-scheduled"]);
    await poke(page);
    await holds("no second reload", async () => (await look(page)).loads === 2, 3000);
  }));

test("a second revoke right after the first moves the tabs again", () =>
  withV1(async ({ s, router, ctx }) => {
    const page = await ctx.newPage();
    await page.goto(`${router}/page`);
    await s.deploy("v2", router);
    await s.must(["revoke", "v1", "--yes"]);
    await pokeUntilStale(page);
    await served(page, "v2");
    // v2 is bad too: revoked within the minute, v3 takes over.
    await s.deploy("v3", router, false);
    await s.must(["revoke", "v2", "--promote", "v3", "--yes"]);
    await pokeUntilStale(page);
    await served(page, "v3");
    const after = await look(page);
    assert.equal(after.loads, 3);
    assert.ok(!after.events.includes("reload-suppressed"), "a different pin is no loop");
  }));

test("a reload that brings the same stale page back waits out the guard, then retries", () =>
  withV1(async ({ s, router, ctx }) => {
    const page = await ctx.newPage();
    const first = await page.goto(`${router}/page`);
    // A cache that keeps serving the v1 document (a CDN, a service
    // worker's shell), with a short guard so the retry comes in the test.
    const headers = await first.allHeaders();
    const body = (await first.text()).replace('client.js">', 'client.js" data-loop-guard-ms="4000">');
    await page.route(`${router}/page`, (r) => r.fulfill({ status: 200, headers, body }));
    await s.deploy("v2", router);
    await s.must(["revoke", "v1", "--yes"]);
    await pokeUntilStale(page);
    await eventually("the old page back, stale again, held back", async () => {
      await poke(page);
      return (await look(page)).events.includes("reload-suppressed");
    });
    const held = await look(page);
    // The cache is fixed; the retry after the window lands on v2.
    await page.unroute(`${router}/page`);
    await served(page, "v2");
    const after = await look(page);
    assert.ok(after.loads <= held.loads + 2, `no reload loop: ${held.loads} then ${after.loads}`);
  }));

test("a second install sends one pin, and a 409 alone reloads nothing", () =>
  withV1(async ({ router, ctx }) => {
    const a = await ctx.newPage();
    const b = await ctx.newPage();
    await a.goto(`${router}/page`);
    await b.goto(`${router}/page`);
    // The script again (an npm install() beside the tag, a hot reload).
    const same = await a.evaluate(async () => {
      const first = window.switchyard;
      await new Promise((done) => {
        const t = document.createElement("script");
        t.src = "/_switchyard/client.js";
        t.onload = done;
        document.head.append(t);
      });
      return window.switchyard === first;
    });
    assert.ok(same, "a second install returns the first client");
    const sent = await a.evaluate(
      () =>
        new Promise((done) => {
          const x = new XMLHttpRequest();
          x.open("GET", "/api");
          x.setRequestHeader("x-pulse-deployment", "v1"); // the app's own, too
          x.onload = () => done([x.status, JSON.parse(x.responseText).headers["x-pulse-deployment"]]);
          x.send();
        }),
    );
    assert.deepEqual(sent, [200, ["v1"]]);
    // A stale-looking 409 that the router does not confirm (a proxy's, a
    // test double's): the tab asks, learns its pin is fine, and stays.
    await a.route(`${router}/odd`, (r) => r.fulfill({ status: 409, headers: { "x-pulse-stale-affinity": "1" }, body: "{}" }));
    assert.equal(await a.evaluate(() => fetch("/odd").then((r) => r.status)), 409);
    await holds("neither tab reloads", async () => (await look(a)).loads === 1 && (await look(b)).loads === 1, 3000);
    assert.ok(!(await look(a)).events.includes("stale"));
  }));

test("a bookmarked link with a revoked pin lands on the active page, never on JSON", () =>
  withV1(async ({ s, router, ctx }) => {
    await s.deploy("v2", router);
    await s.must(["revoke", "v1", "--yes"]);
    const page = await ctx.newPage();
    await eventually("the router to know v1 is revoked", async () => (await fetch(`${router}/x?pulse_deployment=v1`)).status === 409);
    const res = await page.goto(`${router}/page?x=1&pulse_deployment=v1#part`);
    assert.equal(res.status(), 200);
    assert.equal(await page.textContent("#served"), "v2");
    assert.equal(page.url(), `${router}/page?x=1#part`);
  }));

test("a cookie-mode frame with a stale cookie is served, not stuck on JSON", () =>
  withV1(
    async ({ s, router, ctx }) => {
      const page = await ctx.newPage();
      await page.goto(`${router}/page`);
      await s.deploy("v2", router);
      await s.must(["revoke", "v1", "--yes"]);
      await eventually("the router to know v1 is revoked", async () => (await fetch(`${router}/x?pulse_deployment=v1`)).status === 409);
      await page.evaluate((u) => {
        const f = document.createElement("iframe");
        f.src = u;
        document.body.append(f);
      }, `${router}/page?frame=1`);
      const frame = await eventually("the frame", async () => page.frames().find((f) => f.url().includes("frame=1")));
      await frame.waitForSelector("#served");
      assert.equal(await frame.textContent("#served"), "v2");
    },
    { SWITCHYARD_AFFINITY_COOKIE: "sy_pin" },
  ));

test("revoking v1 ends its event stream and the page moves to v2 without another request", () =>
  withV1(async ({ s, router, ctx }) => {
    const page = await ctx.newPage();
    await page.goto(`${router}/page`);
    const first = await page.evaluate(
      () =>
        new Promise((done) => {
          window.feed = new EventSource("/sse?hold");
          window.feed.onmessage = (e) => done(e.data);
        }),
    );
    assert.equal(first, "v1");
    await s.deploy("v2", router);
    await s.must(["revoke", "v1", "--yes"]);
    await served(page, "v2");
    assert.equal((await look(page)).loads, 2);
  }));

test("a preview page loads its own script from its own deployment", () =>
  withV1(async ({ s, router, ctx }) => {
    await s.deploy("v3", router, false);
    const preview = await ctx.newPage();
    await preview.goto(`${router}/page?asset&pulse_deployment=v3`);
    assert.equal(await preview.textContent("#served"), "v3");
    await preview.waitForFunction(() => window.asset);
    assert.equal(await preview.evaluate(() => window.asset), "loaded", "v3-app.js came from v3");
    await holds("a preview is where it is on purpose: no update prompt", async () => !(await look(preview)).events.includes("update-available"), 1500);
    // Another tab on the active build is not pulled along.
    const other = await ctx.newPage();
    await other.goto(`${router}/page?asset`);
    assert.equal(await other.textContent("#served"), "v1");
    await other.waitForFunction(() => window.asset);
    assert.equal(await other.evaluate(() => window.asset), "loaded", "v1-app.js came from v1");
  }));

test("update-available fires only for a build a reload would bring, and says which kind", () =>
  withV1(async ({ s, router, ctx }) => {
    // A canary: v2 takes nearly all unpinned traffic, this browser with it.
    await s.deploy("v2", router, false);
    await s.must(["promote", "v2", "--percent", "99", "--router-url", router]);
    const canary = await ctx.newPage();
    await eventually("the canary to serve this browser", async () => {
      await canary.goto(`${router}/page`);
      return (await canary.textContent("#served")) === "v2";
    });
    await canary.evaluate(() => switchyard.check());
    await holds("no prompt toward the older active build", async () => !(await look(canary)).events.includes("update-available"), 1500);
    // Roll forward, then back: the v2 tab is offered v1, as a rollback.
    await s.must(["promote", "v2", "--router-url", router]);
    await s.must(["rollback", "--router-url", router]);
    await eventually("the rollback prompt", async () => {
      await canary.evaluate(() => switchyard.check());
      return (await canary.evaluate(() => JSON.parse(sessionStorage.getItem("events") || "[]"))).find((e) => e[0] === "update-available");
    });
    const [, detail] = (await canary.evaluate(() => JSON.parse(sessionStorage.getItem("events")))).find((e) => e[0] === "update-available");
    assert.deepEqual({ kind: detail.kind, from: detail.from, to: detail.to }, { kind: "rollback", from: "v2", to: "v1" });
  }));

test("a back navigation to a cached page of a revoked build recovers", () =>
  withV1(async ({ s, router, ctx }) => {
    const page = await ctx.newPage();
    await page.goto(`${router}/page?cache`);
    await page.goto(`${router}/api`);
    await s.deploy("v2", router);
    await s.must(["revoke", "v1", "--yes"]);
    await eventually("the router to know v1 is revoked", async () => (await fetch(`${router}/x?pulse_deployment=v1`)).status === 409);
    await page.goBack();
    // No request from the page: the client checks a page that came back.
    await served(page, "v2");
  }));

test("behind a proxy that strips a path prefix, the client finds its endpoints", () =>
  withV1(async ({ s, router, ctx }) => {
    const app = await s.prefixProxy(router, "/app");
    const page = await ctx.newPage();
    await page.goto(`${app}/page`);
    assert.equal(await page.evaluate(() => switchyard.pin), "v1");
    await s.deploy("v2", router);
    await eventually("update-available through the proxy", async () => {
      await page.evaluate(() => switchyard.check());
      return (await look(page)).events.includes("update-available");
    });
  }));

test("without Server-Timing (Firefox on plain http) the client learns its pin from the router", () =>
  withV1(async ({ s, router, ctx }) => {
    await ctx.addInitScript(() => {
      Object.defineProperty(PerformanceResourceTiming.prototype, "serverTiming", { get: () => [], configurable: true });
    });
    const page = await ctx.newPage();
    await page.goto(`${router}/page`);
    await page.waitForFunction(() => switchyard.pin === "v1");
    await s.deploy("v2", router);
    assert.equal(await page.evaluate(async () => (await (await fetch("/api")).json()).deployment), "v1");
  }));

test("dispose() takes every patch away", () =>
  withV1(async ({ router, ctx }) => {
    const page = await ctx.newPage();
    await page.goto(`${router}/page`);
    const native = await page.evaluate(() => {
      switchyard.dispose();
      const isNative = (f) => String(f).includes("[native code]");
      return [fetch, XMLHttpRequest.prototype.open, XMLHttpRequest.prototype.send, XMLHttpRequest.prototype.setRequestHeader, WebSocket, EventSource, navigator.sendBeacon].map(isNative);
    });
    assert.deepEqual(native, [true, true, true, true, true, true, true]);
    const headers = await page.evaluate(async () => (await (await fetch("/api")).json()).headers);
    assert.equal(headers["x-pulse-deployment"], undefined);
  }));

test("two tabs both recover, once each, at different moments", () =>
  withV1(async ({ s, router, ctx }) => {
    const a = await ctx.newPage();
    const b = await ctx.newPage();
    await a.goto(`${router}/page?tab=a`);
    await b.goto(`${router}/page?tab=b`);
    await s.deploy("v2", router);
    await s.must(["revoke", "v1", "--yes"]);
    // Only tab a makes a request; tab b hears of it over BroadcastChannel.
    await pokeUntilStale(a);
    await served(a, "v2");
    await served(b, "v2");
    const [la, lb] = [await look(a), await look(b)];
    assert.equal(la.loads, 2);
    assert.equal(lb.loads, 2);
    assert.ok(lb.events.includes("stale"));
    assert.notEqual(la.loaded[1][0], lb.loaded[1][0], "reloads are spread, not simultaneous");
    await holds("each reloaded once", async () => (await look(a)).loads === 2 && (await look(b)).loads === 2, 2500);
  }));

test("a hidden tab waits until it is visible before it reloads", () =>
  withV1(async ({ s, router, ctx }) => {
    await ctx.addInitScript(() => {
      let state = "visible";
      Object.defineProperty(document, "visibilityState", { get: () => state, configurable: true });
      Object.defineProperty(document, "hidden", { get: () => state !== "visible", configurable: true });
      window.__show = (v) => {
        state = v;
        document.dispatchEvent(new Event("visibilitychange"));
      };
    });
    const page = await ctx.newPage();
    await page.goto(`${router}/page`);
    await page.evaluate(() => window.__show("hidden"));
    await s.deploy("v2", router);
    await s.must(["revoke", "v1", "--yes"]);
    await pokeUntilStale(page);
    await eventually("reload-scheduled", async () => (await look(page)).events.includes("reload-scheduled"));
    // Past the longest reload delay, still hidden: still the old page.
    await holds("no reload while hidden", async () => (await look(page)).loads === 1, 3000);
    await page.evaluate(() => window.__show("visible"));
    await served(page, "v2");
    assert.equal((await look(page)).loads, 2);
  }));

test("cross-origin requests carry no pin unless allow-listed", () =>
  withV1(async ({ s, router, ctx }) => {
    const page = await ctx.newPage();
    await page.goto(`${router}/page`);
    const other = s.backends.v1; // another origin: the backend itself
    const theirs = await page.evaluate(async (u) => (await (await fetch(`${u}/api`)).json()).headers, other);
    assert.equal(theirs["x-pulse-deployment"], undefined);
    const ours = await page.evaluate(async () => (await (await fetch("/api")).json()).headers);
    assert.deepEqual(ours["x-pulse-deployment"], ["v1"]);
    // The beacon and socket URLs of another origin are left alone too.
    assert.equal(await page.evaluate((u) => switchyard.url(`${u}/x`), other), `${other}/x`);
  }));

test("a cookie-mode page is never locked out by a stale cookie", () =>
  withV1(
    async ({ s, router, ctx }) => {
      const page = await ctx.newPage();
      await page.goto(`${router}/page`);
      const cookie = async () => (await ctx.cookies()).find((c) => c.name === "sy_pin")?.value;
      assert.equal(await cookie(), "v1");
      // Requests that are not document loads never set it.
      await page.evaluate(() => fetch("/api"));
      await s.deploy("v2", router);
      await s.must(["revoke", "v1", "--yes"]);
      const res = await page.goto(`${router}/page`);
      assert.equal(res.status(), 200, "a document load with a revoked cookie is served");
      assert.equal(await page.textContent("#served"), "v2");
      assert.equal(await cookie(), "v2", "and the cookie replaced");
    },
    { SWITCHYARD_AFFINITY_COOKIE: "sy_pin" },
  ));

test("in strict mode an expired pin costs one reload, onto a fresh token", () =>
  withV1(
    async ({ router, ctx }) => {
      const page = await ctx.newPage();
      await page.goto(`${router}/page`);
      const first = await page.evaluate(() => switchyard.pin);
      assert.match(first, /^v1\.\d+\./, "a signed token, not the bare id");
      // The token lives 3 s: the page's next request after that is stale.
      await eventually("the token to expire", async () => (await poke(page)) !== 200, 15000);
      await page.waitForFunction((old) => window.switchyard && switchyard.pin && switchyard.pin !== old, first, { timeout: 15000 });
      const after = await look(page);
      assert.equal(after.served, "v1", "the same deployment, still active");
      assert.equal(after.loads, 2);
    },
    { SWITCHYARD_PIN_SECRET: "0123456789abcdef0123456789abcdef-browser", SWITCHYARD_PIN_TTL: "3s" },
  ));

test("the demo page shows its version, the update banner, and reloads once when revoked", async () => {
  const { freePort, BIN } = await import("./stack.mjs");
  const s = await new Stack().start();
  try {
    const port = await freePort();
    const demo = s.spawn(`${BIN}/switchyard`, ["demo", "--listen", `127.0.0.1:${port}`, "--redis-url", s.redis]);
    const base = `http://127.0.0.1:${port}`;
    await eventually("demo", () => demo.output.includes("Ctrl-C to stop"), 30000);
    const ctx = await chrome.newContext();
    const page = await ctx.newPage();
    await page.goto(`${base}/?pulse_deployment=v1`);
    assert.equal(await page.textContent("#version"), "v1");
    await page.click("#ask");
    await page.waitForFunction(() => document.getElementById("answer").textContent.includes("v1"));
    await page.waitForSelector("#banner", { state: "visible", timeout: 15000 });
    mkdirSync("test-results", { recursive: true });
    await page.screenshot({ path: "test-results/demo.png" });
    assert.match(demo.output, /Redis store/);
    assert.match(demo.output, new RegExp(`${base}/\\?pulse_deployment=v1`), "the v1 link to watch");
    await s.must(["--redis-prefix", "switchyard:demo", "revoke", "v1", "--yes"]);
    // Asking the backend once the router knows: the answer is stale, and the page reloads.
    await eventually("the page to reload onto v2", async () => {
      await page.click("#ask", { timeout: 1000 }).catch(() => {});
      return (await page.textContent("#version").catch(() => "")) === "v2";
    });
    assert.equal(new URL(page.url()).search, "", "the stale pin left the URL");
    await ctx.close();
    // Ctrl-C: the demo takes its records with it.
    demo.kill("SIGINT");
    await eventually("the demo to exit", () => demo.exitCode !== null);
    assert.match(demo.output, /removed the demo's \d+ keys under switchyard:demo/);
    const left = await s.cli(["--redis-prefix", "switchyard:demo", "status", "--json"]);
    assert.deepEqual(JSON.parse(left.stdout).deployments, []);
  } finally {
    await s.stop();
  }
});
