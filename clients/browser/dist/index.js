// src/core.ts
var DEFAULT_NAMES = {
  query: "pulse_deployment",
  header: "x-pulse-deployment",
  prefix: "/_switchyard"
};
var PIN_METRIC = "switchyard-pin";
var ACTIVE_METRIC = "switchyard-active";
var DEPLOYMENT_METRIC = "switchyard-deployment";
function timing(entries, metric) {
  for (const e of entries || []) if (e.name === metric && e.description) return e.description;
  return null;
}
function targets(url, origin, allow) {
  const o = url.origin.replace(/^ws(s?):/, "http$1:");
  return o === origin || allow.includes(o);
}
function withPin(url, pin, names) {
  const out = new URL(url.href);
  out.searchParams.set(names.query, pin);
  return out;
}
function withoutPin(href, names) {
  const url = new URL(href);
  if (!url.searchParams.has(names.query)) return href;
  url.searchParams.delete(names.query);
  return url.href;
}
function isStale(status, header) {
  return status === 409 && header("x-pulse-stale-affinity") === "1";
}
var RELOAD_CLOSE = 1012;
function reconnects(code) {
  return code === 1001 || code === 1006 || code === 1011 || code === 1013;
}
function jitter(windowMs, random) {
  return Math.floor(Math.max(0, windowMs) * random);
}
function backoff(attempt, baseMs, capMs, random) {
  return jitter(Math.min(capMs, baseMs * 2 ** attempt), random);
}
function mayReload(lastReloadAt, now, windowMs) {
  return lastReloadAt === null || now - lastReloadAt >= windowMs;
}

// src/client.ts
var KEY = "switchyard:pin";
var RELOADED = "switchyard:reloaded-at";
function store(key, value) {
  try {
    if (value === void 0) return sessionStorage.getItem(key);
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
  }
  return null;
}
var Client = class extends EventTarget {
  constructor(opts = {}) {
    super();
    this.scheduled = false;
    this.known = null;
    /** The deployment that served this page (the pin may be a token). */
    this.serving = null;
    this.channel = null;
    this.native = {
      fetch: globalThis.fetch?.bind(globalThis),
      WebSocket: globalThis.WebSocket,
      EventSource: globalThis.EventSource
    };
    /** fetch with the pin header on same-origin (and allowed) requests. */
    this.fetch = async (input, init) => {
      if (!this.aim(input instanceof Request ? input.url : input)) return this.native.fetch(input, init);
      const req = new Request(input, init);
      const res = await this.native.fetch(new Request(req, { headers: this.headers(req.headers) }));
      this.watch(res.status, (h) => res.headers.get(h));
      return res;
    };
    this.opts = opts;
    this.names = { ...DEFAULT_NAMES, ...opts.names };
    this.pin = opts.pin || this.fromPage() || store(KEY);
    if (this.pin) {
      store(KEY, this.pin);
      const pin = this.pin;
      const active = this.known;
      this.known = null;
      const tell = () => {
        this.emit("pinned", { pin });
        if (active) this.update(active, this.serving || pin);
      };
      if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", tell);
      else setTimeout(tell);
    }
    try {
      this.channel = new BroadcastChannel("switchyard");
      this.channel.onmessage = (e) => {
        if (e.data && e.data.stale === this.pin) this.stale("other-tab", void 0, false);
      };
    } catch {
      this.channel = null;
    }
    addEventListener("pageshow", (e) => {
      if (e.persisted) {
        this.scheduled = false;
        void this.check();
      }
    });
    const check = () => document.visibilityState === "visible" && void this.check();
    addEventListener("focus", check);
    document.addEventListener("visibilitychange", check);
    const every = opts.checkEveryMs ?? 3e5;
    if (every > 0) setInterval(check, every);
    if (opts.global) this.install();
  }
  fromPage() {
    try {
      const nav = performance.getEntriesByType("navigation")[0];
      const label = timing(nav && nav.serverTiming, PIN_METRIC);
      if (label) {
        this.known = timing(nav && nav.serverTiming, ACTIVE_METRIC);
        this.serving = timing(nav && nav.serverTiming, DEPLOYMENT_METRIC);
        return label;
      }
    } catch {
    }
    const meta = document.querySelector('meta[name="switchyard-pin"]');
    return meta && meta.getAttribute("content") || null;
  }
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
  /** Whether a request to `url` carries the pin, and its absolute URL. */
  aim(url) {
    if (!this.pin) return null;
    const u = new URL(String(url), location.href);
    return targets(u, location.origin, this.opts.allow || []) ? u : null;
  }
  /** `url` with the pin as query parameter, for sockets, streams and beacons. */
  url(url) {
    const u = this.aim(url);
    return u && this.pin ? withPin(u, this.pin, this.names).href : String(url);
  }
  headers(from) {
    const h = new Headers(from);
    if (this.pin) h.set(this.names.header, this.pin);
    return h;
  }
  /** Reacts to what a response says: stale pin, or a newer active one. */
  watch(status, header) {
    if (isStale(status, header)) {
      const ms = Number(header("x-switchyard-reload-window-ms"));
      this.stale("http", Number.isFinite(ms) && ms > 0 ? ms : void 0);
      return;
    }
    const active = header("x-switchyard-active");
    if (active) this.update(active, header("x-pulse-selected-deployment"));
  }
  update(active, serving) {
    if (serving && active !== serving && active !== this.known) {
      this.known = active;
      this.emit("update-available", { active, serving });
    }
  }
  /** Asks the router about this page's pin; called on focus and a timer. */
  async check() {
    if (!this.pin || !this.native.fetch) return;
    try {
      const res = await this.native.fetch(this.names.prefix + "/status", {
        headers: { [this.names.header]: this.pin },
        cache: "no-store"
      });
      const s = await res.json();
      if (s.state === "stale") this.stale("status");
      else if (s.active) this.update(s.active, s.deployment || s.pin);
    } catch {
    }
  }
  /**
   * The pin is stale: drop it and reload this same URL once, after a random
   * delay, when the tab is visible and online. A second stale signal soon
   * after such a reload does not reload again: `reload-suppressed` tells the
   * app instead.
   */
  stale(reason, windowMs, tell = true) {
    if (this.scheduled) return;
    this.scheduled = true;
    this.emit("stale", { reason, pin: this.pin });
    if (tell && this.channel) this.channel.postMessage({ stale: this.pin });
    const last = Number(store(RELOADED)) || null;
    const guard = this.opts.loopGuardMs ?? 6e4;
    if (!mayReload(last, Date.now(), guard)) {
      this.emit("reload-suppressed", { reason, since: last });
      return;
    }
    const delay = jitter(windowMs ?? this.opts.reloadWindowMs ?? 2e3, Math.random());
    this.emit("reload-scheduled", { reason, delay });
    setTimeout(() => this.whenReady(() => void this.reload()), delay);
  }
  whenReady(go) {
    const ready = () => document.visibilityState === "visible" && navigator.onLine !== false;
    if (ready()) return go();
    const again = () => {
      if (!ready()) return;
      document.removeEventListener("visibilitychange", again);
      removeEventListener("online", again);
      go();
    };
    document.addEventListener("visibilitychange", again);
    addEventListener("online", again);
  }
  async reload() {
    if (!this.scheduled) return;
    if (this.opts.unregisterServiceWorker) {
      try {
        const regs = await navigator.serviceWorker?.getRegistrations() || [];
        await Promise.all(regs.map((r) => r.unregister()));
        if (globalThis.caches) await Promise.all((await caches.keys()).map((k) => caches.delete(k)));
      } catch {
      }
    }
    store(RELOADED, String(Date.now()));
    store(KEY, null);
    const href = withoutPin(location.href, this.names);
    if (href !== location.href) history.replaceState(history.state, "", href);
    location.reload();
  }
  /**
   * A WebSocket that keeps its pin: reconnects with jittered backoff after
   * 1001 (router restart), 1006 or 1011, and recovers through a reload after
   * 1012. Events of the live socket are forwarded to the handlers.
   */
  socket(url, protocols, on = {}) {
    let attempt = 0;
    let ws;
    let closed = false;
    const open = () => {
      ws = new this.native.WebSocket(this.url(url), protocols);
      ws.onopen = (e) => {
        attempt = 0;
        on.onopen && on.onopen.call(ws, e);
      };
      ws.onmessage = (e) => on.onmessage && on.onmessage.call(ws, e);
      ws.onclose = (e) => {
        on.onclose && on.onclose.call(ws, e);
        if (closed) return;
        if (e.code === RELOAD_CLOSE) return this.stale("websocket");
        if (reconnects(e.code)) {
          if (e.code === 1006) void this.check();
          setTimeout(open, backoff(attempt++, 250, 3e4, Math.random()));
        }
      };
    };
    open();
    return {
      send: (data) => ws.send(data),
      close: (code, reason) => {
        closed = true;
        ws.close(code, reason);
      },
      get socket() {
        return ws;
      }
    };
  }
  /** Patches the page's own request APIs to carry the pin. */
  install() {
    const self = this;
    globalThis.fetch = this.fetch;
    const open = XMLHttpRequest.prototype.open;
    const send = XMLHttpRequest.prototype.send;
    XMLHttpRequest.prototype.open = function(method, url, ...rest) {
      this._sy = !!self.aim(url);
      return open.call(this, method, url, ...rest);
    };
    XMLHttpRequest.prototype.send = function(body) {
      if (this._sy && self.pin) this.setRequestHeader(self.names.header, self.pin);
      this.addEventListener("loadend", () => self.watch(this.status, (h) => this.getResponseHeader(h)));
      return send.call(this, body);
    };
    if (navigator.sendBeacon) {
      const beacon = navigator.sendBeacon.bind(navigator);
      navigator.sendBeacon = (url, data) => beacon(self.url(url), data);
    }
    const NativeWS = this.native.WebSocket;
    globalThis.WebSocket = class extends NativeWS {
      constructor(url, protocols) {
        super(self.url(url), protocols);
        this.addEventListener("close", (e) => {
          if (e.code === RELOAD_CLOSE) self.stale("websocket");
          else if (e.code === 1006) void self.check();
        });
      }
    };
    const NativeES = this.native.EventSource;
    if (NativeES)
      globalThis.EventSource = class extends NativeES {
        constructor(url, init) {
          super(self.url(url), init);
          this.addEventListener("error", () => this.readyState === 2 && void self.check());
        }
      };
  }
};

// src/index.ts
function install(options = {}) {
  return new Client({ global: true, ...options });
}
export {
  ACTIVE_METRIC,
  Client,
  DEFAULT_NAMES,
  DEPLOYMENT_METRIC,
  PIN_METRIC,
  RELOAD_CLOSE,
  backoff,
  install,
  isStale,
  jitter,
  mayReload,
  reconnects,
  targets,
  timing,
  withPin,
  withoutPin
};
