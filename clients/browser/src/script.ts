// The one-file build the router serves at <prefix>/client.js. It reads the
// router's names (put in front of it by the router) and the script tag's
// data attributes, installs globally unless data-global="false", and puts
// the client at window.switchyard.
import { Client } from "./client";

declare global {
  interface Window {
    __SWITCHYARD__?: { query: string; header: string; prefix: string };
    switchyard?: Client;
  }
}

const tag = document.currentScript as HTMLScriptElement | null;
const data = (tag && tag.dataset) || {};
window.switchyard = new Client({
  names: window.__SWITCHYARD__,
  global: data.global !== "false",
  allow: data.allow ? data.allow.split(/[\s,]+/).filter(Boolean) : [],
  unregisterServiceWorker: data.unregisterServiceWorker === "true",
  reloadWindowMs: data.reloadWindowMs ? Number(data.reloadWindowMs) : undefined,
  loopGuardMs: data.loopGuardMs ? Number(data.loopGuardMs) : undefined,
  checkEveryMs: data.checkEveryMs ? Number(data.checkEveryMs) : undefined,
});
