// The one-file build the router serves at <prefix>/client.js. It reads the
// router's names (put in front of it by the router) and the script tag's
// data attributes, installs globally unless data-global="false", and puts
// the client at window.switchyard. Its endpoints are found next to its own
// URL, so a proxy that strips a path prefix changes nothing.
import { Client, current } from "./client.js";

declare global {
  interface Window {
    __SWITCHYARD__?: { query: string; header: string; prefix: string };
    switchyard?: Client;
  }
}

const tag = document.currentScript as HTMLScriptElement | null;
const data = (tag && tag.dataset) || {};
const here = tag && tag.src ? new URL(".", tag.src).pathname : undefined;
window.switchyard =
  current() ||
  new Client({
    names: window.__SWITCHYARD__,
    endpoint: data.endpoint || here,
    global: data.global !== "false",
    allow: data.allow ? data.allow.split(/[\s,]+/).filter(Boolean) : [],
    unregisterServiceWorker: data.unregisterServiceWorker === "true",
    reloadWindowMs: data.reloadWindowMs ? Number(data.reloadWindowMs) : undefined,
    loopGuardMs: data.loopGuardMs ? Number(data.loopGuardMs) : undefined,
    checkEveryMs: data.checkEveryMs ? Number(data.checkEveryMs) : undefined,
  });
