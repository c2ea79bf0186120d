#!/usr/bin/env node
// Prints envoy.yaml with the Vite dev server's origins added to the CORS allow-list, for local
// development only; the shipped file lists production origins alone. Usage:
//   node envoy/dev-config.mjs > /tmp/envoy.dev.yaml && envoy -c /tmp/envoy.dev.yaml
// Other origins: node envoy/dev-config.mjs http://localhost:3000 > /tmp/envoy.dev.yaml
import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";

const DEV_ORIGINS = ["http://localhost:5173", "http://127.0.0.1:5173"];
const origins = process.argv.length > 2 ? process.argv.slice(2) : DEV_ORIGINS;
const doc = parseDocument(readFileSync(new URL("./envoy.yaml", import.meta.url), "utf8"));
const path = [
  "static_resources",
  "listeners",
  0,
  "filter_chains",
  0,
  "filters",
  0,
  "typed_config",
  "route_config",
  "virtual_hosts",
  0,
  "typed_per_filter_config",
  "envoy.filters.http.cors",
  "allow_origin_string_match",
];
const list = doc.getIn(path);
if (!list?.items) throw new Error("envoy.yaml: no CORS allow_origin_string_match list found");
for (const origin of origins) {
  if (new URL(origin).origin !== origin) throw new TypeError(`not an origin: ${origin}`);
  list.add(doc.createNode({ exact: origin }));
}
process.stdout.write(doc.toString());
