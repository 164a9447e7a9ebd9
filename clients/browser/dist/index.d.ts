export { Client } from "./client";
export type { Options } from "./client";
export * from "./core";
import { Client, Options } from "./client";
export declare function install(options?: Options): Client;
