// The npm package: `new Client(options)`, or `install(options)` for the
// global patch the script build does.
export { Client } from "./client";
export type { Options } from "./client";
export * from "./core";
import { Client, Options } from "./client";

export function install(options: Options = {}): Client {
  return new Client({ global: true, ...options });
}
