#!/usr/bin/env node
// Validates manifests offline against the schemas of kubernetes-models: the core API and the
// custom resources of cert-manager, the Prometheus Operator and KEDA.
//
//   NODE_PATH=<tools>/node/node_modules node validate_crds.mjs FILE_OR_DIR...
//
// An object whose apiVersion is not one of PACKAGES is an error, so a typo in a group or version
// never passes unchecked.
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
      checked++;
    } catch (err) {
      console.error(`${where}: ${err.message}`);
      errors++;
    }
  }
}
if (errors) {
  console.error(`validate_crds: ${errors} error(s)`);
  process.exit(1);
}
console.log(`validate_crds: ${checked} objects valid (kubernetes-models, cert-manager, prometheus-operator, keda)`);
