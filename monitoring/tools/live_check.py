#!/usr/bin/env python3
"""The monitoring and deployment files against the real service and a real Prometheus server.

  live_check.py --binary target/debug/beryl-core-api --rendered rendered-production.yaml \
                [--rendered rendered-staging.yaml ...] --node-modules <tools>/node/node_modules

1. config: every deployment's environment (its ConfigMap, its env, placeholder secrets) passes
   `beryl-core-api config check`, for every rendered overlay.
2. probes: the service started in each deployment's role answers the deployment's startup,
   liveness and readiness probe paths and the ServiceMonitor's /metrics path with 200.
3. rules: a Prometheus server scraping the three instances (labelled as the ServiceMonitor labels
   them) loads monitoring/alerts.yaml and evaluates every rule without error.
4. alert: repeated panics injected into the critical actor adapter-pool make the actor alerts
   fire (BerylActorRestarting, and BerylActorFailed when the supervisor gives up), seen in
   Prometheus' /api/v1/alerts.
5. metrics: every metric named by a rule, a dashboard (panels and variables) or the KEDA query
   is exported by the service (or is a series Prometheus records for every scrape, like `up`),
   and every such expression evaluates in Prometheus.
6. shutdown: SIGTERM stops each instance with exit status 0 within SHUTDOWN_GRACE_PERIOD.

The instances run as in the cluster, on PostgreSQL and Redis (their dependencies), here the
local servers scripts/services.sh starts: a database beryl_test_live_check, created and dropped by
this check, and Redis database 15. All servers listen on 127.0.0.1 on free ports and are stopped
by PID at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "monitoring" / "alerts.yaml"
DASHBOARDS = ROOT / "monitoring" / "dashboards"
ROLES = {"beryl-core-api": "api", "graphql-gateway": "graphql", "event-bus": "worker"}
FAULT_ACTOR = "adapter-pool"
ACTOR_ALERTS = ("BerylActorRestarting", "BerylActorFailed")
# Series Prometheus itself records for every scrape target.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"}
ADMIN_DATABASE_URL = os.environ.get("LIVE_CHECK_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DATABASE = "beryl_test_live_check"
REDIS_URL = os.environ.get("LIVE_CHECK_REDIS_URL", "redis://127.0.0.1:6379/15")
DASHBOARD_VARIABLES = {"namespace": "beryl", "service": ".*", "pod": ".*", "actor": ".*", "domain_actor": ".*"}

results: list[tuple[str, bool, str]] = []


def report(name: str, passed: bool, detail: str) -> None:
    results.append((name, passed, detail))
    print(f"  {'PASS' if passed else 'FAIL'}  {name}: {detail}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, timeout: float = 5) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout):
        return 0, b""


def wait_for(predicate, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Processes:
    """Children started by this check, stopped by PID."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def start(self, args: list[str], env: dict, log: Path) -> subprocess.Popen:
        handle = open(log, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 30) -> tuple[int | None, float]:
        """SIGTERM, then SIGKILL after timeout; returns (exit status, seconds taken)."""
        if proc.poll() is not None:
            return proc.returncode, 0.0
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None, time.monotonic() - started
        return proc.returncode, time.monotonic() - started

    def stop_all(self) -> None:
        for proc in self.children:
            self.stop(proc, timeout=10)


# --- manifests ------------------------------------------------------------------------------------


def load_rendered(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(d, dict)]


def find(objects: list[dict], kind: str, name: str) -> dict:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise SystemExit(f"{kind}/{name} not in the rendered manifests")


def pod_environment(objects: list[dict], deployment: str) -> dict[str, str]:
    """The variables a pod of the deployment gets, with placeholder values for secrets."""
    container = find(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        env.update(find(objects, "ConfigMap", source["configMapRef"]["name"]).get("data") or {})
    placeholders = {"jwt-secret-key": "0123456789abcdef" * 4, "database-password": "placeholder-password"}
    for var in container.get("env") or []:
        value_from = var.get("valueFrom") or {}
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), ""), var["value"])
        elif "fieldRef" in value_from:
            env[var["name"]] = f"{deployment}-live-check"
        elif "secretKeyRef" in value_from:
            ref = value_from["secretKeyRef"]
            if ref["key"] in placeholders:
                env[var["name"]] = placeholders[ref["key"]]
            elif not ref.get("optional"):
                raise SystemExit(f"{deployment}: no placeholder for required secret key {ref['key']}")
    return env


def probe_paths(objects: list[dict], deployment: str) -> dict[str, str]:
    container = find(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]
    return {p: container[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")}


def base_env() -> dict[str, str]:
    return {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}


# --- 1. configuration -----------------------------------------------------------------------------


def check_config(binary: Path, rendered: dict[str, list[dict]], work: Path) -> None:
    for overlay, objects in rendered.items():
        for deployment in ROLES:
            env = base_env() | pod_environment(objects, deployment)
            env["CONFIG_DIR"] = str(ROOT / "config")
            env["AUDIT_LOG_FILE"] = str(work / f"config-check-{deployment}.log")
            proc = subprocess.run([str(binary), "config", "check"], env=env, capture_output=True, text=True, timeout=60)
            detail = (proc.stdout + proc.stderr).strip().splitlines()
            report(f"config {overlay}/{deployment}", proc.returncode == 0,
                   "accepted by `config check`" if proc.returncode == 0 else " | ".join(detail[-6:]))


# --- 2. service instances -------------------------------------------------------------------------


def psql(sql: str) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", ADMIN_DATABASE_URL, "-Atqc", sql], capture_output=True, text=True, check=False)


def prepare_database() -> str | None:
    """Creates the check's database; returns its URL, or None (reported) when PostgreSQL is not there."""
    try:
        psql(f'DROP DATABASE IF EXISTS "{DATABASE}"')
        created = psql(f'CREATE DATABASE "{DATABASE}"')
    except FileNotFoundError:
        report("dependencies", False, "psql not found; start PostgreSQL and Redis with scripts/services.sh start")
        return None
    if created.returncode != 0:
        report("dependencies", False, f"cannot create database {DATABASE} through {ADMIN_DATABASE_URL}: {created.stderr.strip()} "
               "(scripts/services.sh start)")
        return None
    return ADMIN_DATABASE_URL.rsplit("/", 1)[0] + "/" + DATABASE



def start_instances(binary: Path, objects: list[dict], procs: Processes, work: Path, database_url: str) -> dict[str, dict]:
    instances = {}
    for deployment, role in ROLES.items():
        port = free_port()
        env = base_env() | {
            "ENVIRONMENT": "development",
            "SERVICE_ROLE": role,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "METRICS_ENABLED": "true",
            "TRACING_ENABLED": "false",
            "EVENT_BUS": "memory",
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "AUDIT_ENABLED": "true",
            "AUDIT_LOG_FILE": str(work / f"audit-{deployment}.log"),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARN",
            "CONFIG_DIR": str(ROOT / "config"),
            "SHUTDOWN_GRACE_PERIOD": pod_environment(objects, deployment).get("SHUTDOWN_GRACE_PERIOD", "25"),
            "FAULT_INJECTION_ENABLED": "true" if role == "api" else "false",
        }
        proc = procs.start([str(binary), "serve"], env, work / f"{deployment}.log")
        instances[deployment] = {"port": port, "proc": proc, "url": f"http://127.0.0.1:{port}",
                                 "grace": float(env["SHUTDOWN_GRACE_PERIOD"])}
    for deployment, inst in instances.items():
        paths = probe_paths(objects, deployment)
        started = wait_for(lambda: http("GET", inst["url"] + paths["startupProbe"])[0] == 200, 60)
        if not started:
            log = (work / f"{deployment}.log").read_text(errors="replace")[-1500:]
            report(f"probes {deployment}", False, f"{paths['startupProbe']} never answered 200 (exit {inst['proc'].poll()}): {log}")
            continue
        statuses = {path: http("GET", inst["url"] + path)[0] for path in (paths["livenessProbe"], paths["readinessProbe"], "/metrics")}
        ok = all(s == 200 for s in statuses.values())
        report(f"probes {deployment}", ok, f"role {ROLES[deployment]}: {paths['startupProbe']} 200, "
               + ", ".join(f"{p} {s}" for p, s in statuses.items()))
    return instances


# --- 3. Prometheus ----------------------------------------------------------------------------------


def start_prometheus(prometheus: str, instances: dict, procs: Processes, work: Path) -> str:
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": deployment,
                "metrics_path": "/metrics",
                "static_configs": [{
                    "targets": [f"127.0.0.1:{inst['port']}"],
                    # The target labels the ServiceMonitor gives in the cluster.
                    "labels": {"namespace": "beryl", "service": deployment, "pod": f"{deployment}-live-check"},
                }],
            }
            for deployment, inst in instances.items()
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    procs.start([prometheus, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], base_env(), work / "prometheus.log")
    url = f"http://127.0.0.1:{port}"
    if not wait_for(lambda: http("GET", url + "/-/ready")[0] == 200, 60):
        raise SystemExit(f"Prometheus did not start: {(work / 'prometheus.log').read_text(errors='replace')[-1500:]}")
    return url


def query(prom: str, expr: str) -> dict:
    status, body = http("GET", prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return {"status": "error", "error": f"HTTP {status}"}


def check_rules(prom: str, instances: dict) -> None:
    up = wait_for(lambda: len(query(prom, "up == 1").get("data", {}).get("result", [])) == len(instances), 30)
    report("scrape", bool(up), f"{len(instances)} targets up" if up else "not every target is up")
    expected = sum(len(g["rules"]) for g in yaml.safe_load(ALERTS.read_text())["groups"])

    def evaluated():
        data = json.loads(http("GET", prom + "/api/v1/rules")[1] or b"{}").get("data", {})
        rules = [r for g in data.get("groups", []) for r in g["rules"]]
        return rules if len(rules) == expected and all(r.get("lastEvaluation", "").startswith("20") for r in rules) else None

    rules = wait_for(evaluated, 20) or []
    broken = [f"{r['name']}: {r.get('lastError')}" for r in rules if r.get("health") != "ok"]
    report("rules", len(rules) == expected and not broken,
           f"{len(rules)}/{expected} rules of monitoring/alerts.yaml loaded and evaluated" + (f"; errors: {broken}" if broken else ""))


# --- 4. fault injection -----------------------------------------------------------------------------


def firing_actor_alerts(prom: str) -> dict[str, str]:
    data = json.loads(http("GET", prom + "/api/v1/alerts")[1] or b"{}").get("data", {})
    return {a["labels"]["alertname"]: a["state"] for a in data.get("alerts", [])
            if a["labels"].get("actor") == FAULT_ACTOR and a["labels"]["alertname"] in ACTOR_ALERTS}


def actor_state(api: dict) -> str:
    """State of the fault actor in GET /health."""
    status, body = http("GET", api["url"] + "/health")
    try:
        actors = json.loads(body).get("actors", [])
    except json.JSONDecodeError:
        return f"unreadable /health ({status})"
    return next((a.get("state", "?") for a in actors if a.get("name") == FAULT_ACTOR), "absent")


def actor_failures(api: dict) -> float:
    """beryl_actor_failures_total of the fault actor, from the instance's own /metrics."""
    body = http("GET", api["url"] + "/metrics")[1].decode(errors="replace")
    pattern = re.compile(r'^beryl_actor_failures_total\{[^}]*actor="' + re.escape(FAULT_ACTOR) + r'"[^}]*\} ([0-9.e+]+)$', re.M)
    return sum(float(v) for v in pattern.findall(body))


def check_fault_alert(prom: str, api: dict, injections: int) -> None:
    # Some traffic first, so that the HTTP series exist.
    for path in ("/health", "/health/ready", "/no-such-route"):
        http("GET", api["url"] + path)
    http("POST", api["url"] + "/graphql", json.dumps({"query": "{ __typename }"}).encode())
    before = actor_failures(api)
    statuses = []
    # Panic the actor, let its supervisor restart it, again, until the supervisor gives up.
    for _ in range(injections):
        if actor_state(api) == "failed":
            break
        status = http("POST", f"{api['url']}/internal/faults/{FAULT_ACTOR}", json.dumps({"kind": "panic"}).encode())[0]
        statuses.append(status)
        if status in (0, 400, 404, 405):
            break
        wait_for(lambda: actor_state(api) in ("running", "failed"), 10, 0.1)
    injected = actor_failures(api) - before
    if injected <= 0:
        report("fault injection", False, f"POST /internal/faults/{FAULT_ACTOR} answered {statuses}; beryl_actor_failures_total did not move")
        return
    started = time.monotonic()

    # A failed actor must raise BerylActorFailed; one that keeps restarting, BerylActorRestarting.
    def wanted() -> tuple[str, ...]:
        return ("BerylActorFailed",) if actor_state(api) == "failed" else ("BerylActorRestarting",)

    def all_firing():
        states = firing_actor_alerts(prom)
        return states if all(states.get(name) == "firing" for name in wanted()) else None

    states = wait_for(all_firing, 60) or firing_actor_alerts(prom)
    report("actor alert", all(states.get(name) == "firing" for name in wanted()),
           f"{len(statuses)} panics injected into {FAULT_ACTOR} ({injected:.0f} failures counted, answers {sorted(set(statuses))}, "
           f"actor now {actor_state(api)}); {time.monotonic() - started:.1f}s later /api/v1/alerts shows "
           + (", ".join(f"{n} {s}" for n, s in sorted(states.items())) or "no actor alert"))
    ready = http("GET", api["url"] + "/health/ready")[0]
    gauge = [r["value"][1] for r in query(prom, 'beryl_health_ready{service="beryl-core-api"}').get("data", {}).get("result", [])]
    print(f"        /health/ready of the api instance now answers {ready}; beryl_health_ready = {gauge}")


# --- 5. metric names ----------------------------------------------------------------------------------


def exported_metrics(instances: dict) -> set[str]:
    names: set[str] = set()
    for inst in instances.values():
        status, body = http("GET", inst["url"] + "/metrics")
        for line in body.decode(errors="replace").splitlines():
            if line.startswith("# TYPE "):
                names.add(line.split()[2])
            elif line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def collect_expressions(rendered: list[dict]) -> list[dict]:
    exprs = []
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            exprs.append({"source": f"alerts.yaml {rule.get('alert') or rule.get('record')}", "expr": rule["expr"]})
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        panels = board.get("panels", [])
        for panel in panels + [p for row in panels for p in row.get("panels", [])]:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    exprs.append({"source": f"{path.name} '{panel.get('title')}' {target.get('refId')}", "expr": target["expr"]})
        for var in board.get("templating", {}).get("list", []):
            q = var.get("query")
            text = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", text or "")
            if var.get("type") == "query":
                if not m:
                    exprs.append({"source": f"{path.name} variable {var['name']}", "expr": "unsupported variable query: " + str(text)})
                else:
                    exprs.append({"source": f"{path.name} variable {var['name']}", "expr": m.group(1)})
    for obj in rendered:
        if obj["kind"] == "ScaledObject":
            for trigger in obj["spec"]["triggers"]:
                if trigger["type"] == "prometheus":
                    exprs.append({"source": f"ScaledObject/{obj['metadata']['name']} (KEDA)", "expr": trigger["metadata"]["query"]})
    return exprs


def substitute(expr: str) -> str:
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "1m", expr)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: DASHBOARD_VARIABLES.get(m.group(1), m.group(0)), expr)


def check_metric_names(prom: str, instances: dict, rendered: list[dict], node_modules: str) -> None:
    exported = exported_metrics(instances)
    recorded = set(json.loads(http("GET", prom + "/api/v1/label/__name__/values")[1] or b"{}").get("data", []))
    allowed = exported | (SCRAPE_SERIES & recorded)
    exprs = collect_expressions(rendered)
    proc = subprocess.run(["node", str(ROOT / "monitoring" / "tools" / "promql_metrics.mjs")], input=json.dumps(exprs),
                          capture_output=True, text=True, env=base_env() | {"NODE_PATH": node_modules}, check=False)
    if proc.returncode != 0:
        report("metric names", False, f"promql_metrics.mjs failed: {proc.stderr.strip()[-500:]}")
        return
    analysed = json.loads(proc.stdout)
    unknown, syntax, used = [], [], set()
    for item in analysed:
        if item["error"]:
            syntax.append(f"{item['source']}: {item['error']}")
        for name in item["metrics"]:
            used.add(name)
            if name not in allowed:
                unknown.append(f"{item['source']}: {name}")
    report("metric names", not unknown and not syntax,
           f"{len(used)} metric names in {len(analysed)} expressions (rules, dashboards, KEDA), all exported by the service"
           if not unknown and not syntax else "; ".join(syntax + [f"not exported: {u}" for u in unknown]))

    failures = []
    for item in exprs:
        answer = query(prom, substitute(item["expr"]))
        if answer.get("status") != "success":
            failures.append(f"{item['source']}: {answer.get('error')}")
    report("expressions evaluate", not failures,
           f"{len(exprs)} expressions accepted by Prometheus" if not failures else "; ".join(failures[:8]))

    for item in exprs:
        if "(KEDA)" in item["source"]:
            answer = query(prom, item["expr"])
            value = [r["value"][1] for r in answer.get("data", {}).get("result", [])]
            report("KEDA query", answer.get("status") == "success",
                   f"{item['expr']} = {value or 'empty (KEDA reads it as 0 with ignoreNullValues)'}")


# --- 6. shutdown ----------------------------------------------------------------------------------------


def check_shutdown(procs: Processes, instances: dict) -> None:
    for deployment, inst in instances.items():
        code, took = procs.stop(inst["proc"], timeout=inst["grace"] + 5)
        ok = code == 0 and took <= inst["grace"]
        report(f"shutdown {deployment}", ok, f"SIGTERM -> exit {code} in {took:.2f}s (SHUTDOWN_GRACE_PERIOD {inst['grace']:.0f}s, pod grace 30s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True, type=Path)
    parser.add_argument("--rendered", required=True, action="append", type=Path,
                        help="rendered overlay; the first one provides the deployments and the KEDA query")
    parser.add_argument("--node-modules", required=True)
    parser.add_argument("--prometheus", default="prometheus")
    parser.add_argument("--injections", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, Prometheus config)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="beryl-live-check-"))
    rendered = {path.stem.replace("rendered-", ""): load_rendered(path) for path in args.rendered}
    first = next(iter(rendered.values()))
    procs = Processes()
    try:
        check_config(args.binary, rendered, work)
        database_url = prepare_database()
        if database_url is None:
            return 1
        instances = start_instances(args.binary, first, procs, work, database_url)
        prom = start_prometheus(args.prometheus, instances, procs, work)
        check_rules(prom, instances)
        check_fault_alert(prom, instances["beryl-core-api"], args.injections)
        check_metric_names(prom, instances, first, args.node_modules)
        check_shutdown(procs, instances)
    finally:
        procs.stop_all()
        if shutil.which("psql"):
            psql(f'DROP DATABASE IF EXISTS "{DATABASE}"')
        if args.keep or any(not passed for _, passed, _ in results):
            print(f"  logs and configuration kept in {work}")
        else:
            subprocess.run(["rm", "-rf", str(work)], check=False)
    failed = [name for name, passed, _ in results if not passed]
    print(f"live_check: {len(failed)} of {len(results)} checks failed" if failed else f"live_check: all {len(results)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
