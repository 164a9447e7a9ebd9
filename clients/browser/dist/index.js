// src/core.ts
var DEFAULT_NAMES = {
  query: "pulse_deployment",
  header: "x-pulse-deployment",
  prefix: "/_switchyard"
};
var PIN_METRIC = "switchyard-pin";
var ACTIVE_METRIC = "switchyard-active";
var DEPLOYMENT_METRIC = "switchyard-deployment";
var STALE_HEADER = "x-pulse-stale-affinity";
var ACTIVE_HEADER = "x-switchyard-active";
var RELOAD_WINDOW_HEADER = "x-switchyard-reload-window-ms";
var STATUS_PATH = "/status";
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
  return status === 409 && header(STALE_HEADER) === "1";
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
function parseReloaded(raw) {
  if (!raw) return null;
  try {
    const v = JSON.parse(raw);
    if (typeof v === "number") return { pin: null, at: v };
    if (v && typeof v.at === "number") return { pin: typeof v.pin === "string" ? v.pin : null, at: v.at };
  } catch {
  }
  return null;
}
function reloadWait(last, pin, now, windowMs) {
  if (!last || last.pin !== pin) return 0;
  return Math.max(0, last.at + windowMs - now);
}

// src/client.ts
var RELOADED = "switchyard:reloaded";
var INSTANCE = /* @__PURE__ */ Symbol.for("switchyard.client");
function store(key, value) {
  try {
    if (value === void 0) return sessionStorage.getItem(key);
    sessionStorage.setItem(key, value);
  } catch {
  }
  return null;
}
function current() {
  return globalThis[INSTANCE];
}
var Client = class extends EventTarget {
  constructor(opts = {}) {
    super();
    this.pin = null;
    this.scheduled = false;
    /** The last `update-available` target told, so each is told once. */
    this.told = null;
    /** The last active id seen in a response, to check only on change. */
    this.seenActive = null;
    /** The deployment that served this page (the pin may be a token). */
    this.serving = null;
    this.channel = null;
    this.undo = [];
    this.native = {
      fetch: globalThis.fetch?.bind(globalThis),
      WebSocket: globalThis.WebSocket,
      EventSource: globalThis.EventSource
    };
    /** fetch with the pin header on same-origin (and allowed) requests. */
    this.fetch = async (input, init) => {
      if (!this.aim(input instanceof Request ? input.url : input)) return this.native.fetch(input, init);
      const req = new Request(input, init);
      const headers = new Headers(req.headers);
      if (this.pin) headers.set(this.names.header, this.pin);
      const res = await this.native.fetch(new Request(req, { headers }));
      this.watch(res.status, (h) => res.headers.get(h));
      return res;
    };
    this.opts = opts;
    this.names = { ...DEFAULT_NAMES, ...opts.names };
    this.endpoint = (opts.endpoint || this.names.prefix).replace(/\/$/, "");
    if (typeof window === "undefined" || typeof document === "undefined") return;
    const nav = navigation();
    const learnt = this.fromPage(nav);
    const later = (f) => document.readyState === "loading" ? this.on(document, "DOMContentLoaded", f) : setTimeout(f);
    if (learnt) {
      this.pin = learnt[0];
      later(() => {
        this.emit("pinned", { pin: learnt[0], source: learnt[1] });
        const cached = nav && (nav.type === "back_forward" || nav.transferSize === 0);
        if (cached || this.seenActive && this.seenActive !== this.serving) void this.check();
      });
    } else {
      later(() => void this.check());
    }
    if (nav && nav.workerStart > 0 && !opts.unregisterServiceWorker)
      console.warn(
        'switchyard: this page came through a service worker; if it serves a cached page, set unregisterServiceWorker (data-unregister-service-worker="true") so a stale page can recover'
      );
    try {
      this.channel = new BroadcastChannel("switchyard");
      this.channel.onmessage = (e) => {
        if (e.data && this.pin && e.data.stale === this.pin) this.stale("other-tab", void 0, true);
      };
    } catch {
      this.channel = null;
    }
    this.on(window, "pageshow", (e) => {
      if (e.persisted) {
        this.scheduled = false;
        void this.check();
      }
    });
    const check = () => document.visibilityState === "visible" && void this.check();
    this.on(window, "focus", check);
    this.on(document, "visibilitychange", check);
    const every = opts.checkEveryMs ?? 3e5;
    if (every > 0) {
      const t = setInterval(check, every);
      this.undo.push(() => clearInterval(t));
    }
    if (opts.global) this.install();
  }
  addEventListener(type, listener, options) {
    super.addEventListener(type, listener, options);
  }
  removeEventListener(type, listener, options) {
    super.removeEventListener(type, listener, options);
  }
  /** Listens until `dispose()`. */
  on(target, type, f) {
    target.addEventListener(type, f);
    this.undo.push(() => target.removeEventListener(type, f));
  }
  fromPage(nav) {
    if (this.opts.pin) return [this.opts.pin, "option"];
    const label = timing(nav && nav.serverTiming, PIN_METRIC);
    if (label) {
      this.seenActive = timing(nav && nav.serverTiming, ACTIVE_METRIC);
      this.serving = timing(nav && nav.serverTiming, DEPLOYMENT_METRIC);
      return [label, "server-timing"];
    }
    const meta = document.querySelector(`meta[name="${PIN_METRIC}"]`);
    const content = meta && meta.getAttribute("content");
    if (content) return [content, "meta"];
    const inUrl = new URL(location.href).searchParams.get(this.names.query);
    return inUrl ? [inUrl, "url"] : null;
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
  /** Reacts to what a response says: stale pin, or another active build. */
  watch(status, header) {
    if (isStale(status, header)) {
      const ms = Number(header(RELOAD_WINDOW_HEADER));
      this.stale("http", Number.isFinite(ms) && ms > 0 ? ms : void 0);
      return;
    }
    const active = header(ACTIVE_HEADER);
    if (active && active !== this.seenActive) {
      this.seenActive = active;
      void this.check();
    }
  }
  async status() {
    if (!this.native.fetch) return null;
    try {
      const res = await this.native.fetch(this.endpoint + STATUS_PATH, {
        headers: this.pin ? { [this.names.header]: this.pin } : {},
        cache: "no-store",
        credentials: "same-origin"
      });
      return res.ok ? await res.json() : null;
    } catch {
      return null;
    }
  }
  /**
   * Asks the router about this page's pin (on focus, on a timer, and when
   * a response hints something changed): stale means one reload; another
   * build a reload would bring means `update-available`.
   */
  async check() {
    if (typeof window === "undefined") return;
    const s = await this.status();
    if (!s) return;
    if (!this.pin) {
      if (s.next_pin && !this.pin) {
        this.pin = s.next_pin;
        this.serving = s.next;
        this.emit("pinned", { pin: s.next_pin, source: "status" });
      }
      return;
    }
    if (s.state === "stale") return this.stale("status", void 0, true);
    if (s.update && s.update.to !== this.told) {
      this.told = s.update.to;
      this.emit("update-available", { ...s.update, active: s.active });
    } else if (!s.update) {
      this.told = null;
    }
  }
  /**
   * The pin is stale: drop it and reload this same URL once, after a random
   * delay, when the tab is visible and online. A signal other than the
   * router's own status answer is confirmed with it first, so a stray 409
   * or close code never reloads a healthy tab. If this same pin went stale
   * right after its own reload, `reload-suppressed` tells the app and the
   * reload is retried once the loop guard's window has passed.
   */
  stale(reason, windowMs, confirmed = false) {
    if (this.scheduled || typeof window === "undefined") return;
    if (!confirmed) {
      void this.status().then((s) => s && s.state === "stale" && this.stale(reason, windowMs, true));
      return;
    }
    this.scheduled = true;
    this.emit("stale", { reason, pin: this.pin });
    if (reason !== "other-tab" && this.channel) this.channel.postMessage({ stale: this.pin });
    const last = parseReloaded(store(RELOADED));
    const wait = reloadWait(last, this.pin, Date.now(), this.opts.loopGuardMs ?? 6e4);
    if (wait > 0 && last) {
      this.emit("reload-suppressed", { reason, since: last.at, retryAt: Date.now() + wait });
      const t = setTimeout(() => {
        this.scheduled = false;
        void this.check();
      }, wait);
      this.undo.push(() => clearTimeout(t));
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
    store(RELOADED, JSON.stringify({ pin: this.pin, at: Date.now() }));
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
  /**
   * Patches the page's own request APIs to carry the pin. A page has one
   * patch: when another client (the script tag and the npm package both,
   * a hot reload, StrictMode) already installed, this one leaves the
   * globals alone.
   */
  install() {
    const g = globalThis;
    if (typeof window === "undefined" || g[INSTANCE]) return;
    g[INSTANCE] = this;
    const self = this;
    const put = (obj, key, value) => {
      const before = obj[key];
      obj[key] = value;
      this.undo.push(() => {
        obj[key] = before;
      });
    };
    put(globalThis, "fetch", this.fetch);
    const proto = XMLHttpRequest.prototype;
    const { open, send, setRequestHeader } = proto;
    put(proto, "open", function(method, url, ...rest) {
      this._sy = !!self.aim(url);
      this._syPin = false;
      return open.call(this, method, url, ...rest);
    });
    put(proto, "setRequestHeader", function(name, value) {
      if (this._sy && self.pin && name.toLowerCase() === self.names.header) return;
      return setRequestHeader.call(this, name, value);
    });
    put(proto, "send", function(body) {
      if (this._sy && self.pin && !this._syPin) {
        this._syPin = true;
        setRequestHeader.call(this, self.names.header, self.pin);
      }
      this.addEventListener("loadend", () => self.watch(this.status, (h) => this.getResponseHeader(h)));
      return send.call(this, body);
    });
    if (navigator.sendBeacon) {
      const beacon = navigator.sendBeacon.bind(navigator);
      put(navigator, "sendBeacon", (url, data) => beacon(self.url(url), data));
    }
    const NativeWS = this.native.WebSocket;
    put(
      globalThis,
      "WebSocket",
      class extends NativeWS {
        constructor(url, protocols) {
          super(self.url(url), protocols);
          this.addEventListener("close", (e) => {
            if (e.code === RELOAD_CLOSE) self.stale("websocket");
            else if (e.code === 1006) void self.check();
          });
        }
      }
    );
    const NativeES = this.native.EventSource;
    if (NativeES)
      put(
        globalThis,
        "EventSource",
        class extends NativeES {
          constructor(url, init) {
            super(self.url(url), init);
            this.addEventListener("error", () => void self.check());
          }
        }
      );
  }
  /** Removes every patch and listener this client made. */
  dispose() {
    for (const f of this.undo.splice(0).reverse()) f();
    const g = globalThis;
    if (g[INSTANCE] === this) delete g[INSTANCE];
    this.channel?.close();
    this.channel = null;
  }
};
function navigation() {
  try {
    return performance.getEntriesByType("navigation")[0];
  } catch {
    return void 0;
  }
}

// src/index.ts
function install(options = {}) {
  return current() || new Client({ global: true, ...options });
}
export {
  Client,
  current,
  install
};
