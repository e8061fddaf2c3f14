#!/usr/bin/env node
// Validates manifests offline against the schemas of kubernetes-models: the core API and the
// custom resources of cert-manager, the Prometheus Operator and KEDA.
//
//   NODE_PATH=<tools>/node/node_modules node validate_crds.mjs FILE_OR_DIR...
//
// An object whose apiVersion is not one of PACKAGES is an error, so a typo in a group or version
// never passes unchecked. Unknown fields are errors too, as the API server's strict field
// validation makes them (`kubectl apply --validate=strict`): the schemas of kubernetes-models do
// not refuse them, so each field is probed (see unknownFields), and a misspelled
// `minReplicaCounts` fails instead of being dropped silently by the cluster.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const MODULES = process.env.NODE_PATH ?? "node_modules";
const require = createRequire(join(MODULES, "noop.js"));
const yaml = require("js-yaml");

// apiVersion group -> npm package holding its models.
const PACKAGES = {
  "cert-manager.io": "@kubernetes-models/cert-manager",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "keda.sh": "@kubernetes-models/keda",
};
const CORE_GROUPS = new Set([
  "", "apps", "autoscaling", "batch", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
  "storage.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "discovery.k8s.io",
]);

function files(args) {
  const out = [];
  for (const arg of args) {
    if (statSync(arg).isDirectory()) {
      for (const name of readdirSync(arg).sort()) {
        if (/\.ya?ml$/.test(name)) out.push(join(arg, name));
      }
    } else {
      out.push(arg);
    }
  }
  return out;
}

async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  // The packages export their models to `import` only: load the model file by its path.
  let file;
  if (PACKAGES[group]) file = join(MODULES, PACKAGES[group], group, version, `${kind}.js`);
  else if (CORE_GROUPS.has(group)) file = join(MODULES, "kubernetes-models", group, version, `${kind}.js`);
  else return null;
  if (!existsSync(file)) return null;
  return (await import(pathToFileURL(file).href))[kind] ?? null;
}

// A value no schema type accepts (not a string, number, boolean, null, array or object): a field
// the schema knows fails validation at its own path when it holds this; a field the schema does
// not know passes.
const PROBE = Symbol("probe");
const PROBE_KEY = "__validate_crds_probe__";

function pointer(path) {
  return path.map((p) => "/" + String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("");
}

function errorsOf(Model, doc) {
  try {
    new Model(doc).validate();
    return [];
  } catch (err) {
    return err.errors ?? [{ instancePath: "", message: err.message }];
  }
}

// The document with the value at `path` replaced.
function withValue(doc, path, value) {
  const copy = structuredClone(doc);
  let node = copy;
  for (const p of path.slice(0, -1)) node = node[p];
  node[path[path.length - 1]] = value;
  return copy;
}

// Paths (JSON pointers) of the fields of a valid `doc` that its schema does not define.
function unknownFields(Model, doc) {
  const unknown = [];
  const fails = (path) => errorsOf(Model, withValue(doc, path, PROBE)).some((e) => e.instancePath === pointer(path));
  const walk = (value, path) => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, [...path, i]));
      return;
    }
    if (value === null || typeof value !== "object") return;
    // A map (typed additionalProperties) takes any key: only its values are checked.
    const isMap = fails([...path, PROBE_KEY]);
    for (const [key, child] of Object.entries(value)) {
      if (!isMap && !fails([...path, key])) {
        unknown.push(pointer([...path, key]));
        continue;
      }
      walk(child, [...path, key]);
    }
  };
  walk(doc, []);
  return unknown;
}

let errors = 0;
let checked = 0;
const args = process.argv.slice(2);
if (args.length === 0) {
  console.error("usage: validate_crds.mjs FILE_OR_DIR...");
  process.exit(2);
}
for (const file of files(args)) {
  let docs;
  try {
    docs = yaml.loadAll(readFileSync(file, "utf8")).filter((d) => d != null);
  } catch (err) {
    console.error(`${file}: not YAML: ${err.message}`);
    errors++;
    continue;
  }
  for (const doc of docs) {
    const where = `${file}: ${doc.kind}/${doc.metadata?.name}`;
    const Model = await modelFor(doc.apiVersion ?? "", doc.kind ?? "");
    if (!Model) {
      console.error(`${where}: no schema for ${doc.apiVersion} ${doc.kind}`);
      errors++;
      continue;
    }
    try {
      new Model(doc).validate();
    } catch (err) {
      console.error(`${where}: ${err.message}`);
      errors++;
      continue;
    }
    const unknown = unknownFields(Model, doc);
    for (const path of unknown) {
      console.error(`${where}: unknown field ${path}`);
      errors++;
    }
    if (unknown.length === 0) checked++;
  }
}
if (errors) {
  console.error(`validate_crds: ${errors} error(s)`);
  process.exit(1);
}
console.log(`validate_crds: ${checked} objects valid, no unknown field (kubernetes-models, cert-manager, prometheus-operator, keda)`);
