#!/usr/bin/env node
// Metric names used by PromQL expressions, read with Prometheus' own PromQL grammar
// (@prometheus-io/lezer-promql), not with regular expressions.
//
//   echo '[{"source": "alerts.yaml BerylNotReady", "expr": "beryl_health_ready == 0"}]' \
//     | NODE_PATH=<tools>/node/node_modules node promql_metrics.mjs
//
// Prints [{"source", "expr", "metrics": [...], "error": null | "..."}]. Grafana variables are
// replaced first: $__rate_interval-like ones by a duration, $name in label values stay as text.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.NODE_PATH ?? "node_modules";
const { parser } = await import(
  pathToFileURL(join(modules, "@prometheus-io/lezer-promql/dist/index.es.js")).href
);

function grafanaToPromql(expr) {
  return expr
    .replace(/\$__(rate_interval|interval|range)(_ms|_s)?\b/g, "5m")
    .replace(/\[\$\{?\w+\}?\]/g, "[5m]");
}

function analyse(expr) {
  const text = grafanaToPromql(expr);
  const tree = parser.parse(text);
  const metrics = new Set();
  let error = null;
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError && error === null) {
      error = `syntax error at ${cursor.from}: ${JSON.stringify(text.slice(Math.max(0, cursor.from - 20), cursor.from + 20))}`;
    }
    if (cursor.name === "Identifier" && cursor.node.parent?.name === "VectorSelector") {
      metrics.add(text.slice(cursor.from, cursor.to));
    }
    // {__name__="metric"} selectors
    if (cursor.name === "UnquotedLabelMatcher") {
      const matcher = text.slice(cursor.from, cursor.to);
      const m = matcher.match(/^__name__\s*=\s*"([^"]+)"$/);
      if (m) metrics.add(m[1]);
    }
  } while (cursor.next());
  return { metrics: [...metrics].sort(), error };
}

const input = JSON.parse(readFileSync(0, "utf8"));
const output = input.map(({ source, expr }) => ({ source, expr, ...analyse(expr) }));
process.stdout.write(JSON.stringify(output, null, 1) + "\n");
