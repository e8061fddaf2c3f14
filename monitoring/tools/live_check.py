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
4. events: a wallet opened through the API instance, a settled payment for it produced to the
   worker's inbound topic credits it, and a notification of an unknown type goes to the
   dead-letter topic; the worker exports its event-bus metrics (published, received, applied,
   dead-lettered, outbox and consumer lags).
5. alert: repeated panics injected into the critical actor adapter-pool make the actor alerts
   fire (BerylActorRestarting, and BerylActorFailed when the supervisor gives up), seen in
   Prometheus' /api/v1/alerts.
6. metrics: every metric named by a rule, a dashboard (panels and variables) or the KEDA query
   is exported by the service (or is a series Prometheus records for every scrape, like `up`, or
   one of the kube-state-metrics series of KUBE_STATE_SERIES),
   and every such expression evaluates in Prometheus.
7. shutdown: SIGTERM stops each instance with exit status 0 within SHUTDOWN_GRACE_PERIOD.

The instances run as in the cluster, on PostgreSQL, Redis and Kafka (their dependencies), here the
local servers scripts/services.sh starts: a database beryl_test_live_check, created and dropped by
this check, and Redis database 15; and a Kafka-compatible broker (tansu: --tansu, BERYL_TANSU_BIN
or `scripts/kafka.sh bin`) started by this check with its data in the work directory. The instances
and the broker listen on 127.0.0.1 on free ports and are stopped by PID at the end.
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
import uuid
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
# Series of kube-state-metrics (kube-prometheus-stack) the rules use: the kubelet's view of the pods.
KUBE_STATE_SERIES = {"kube_pod_container_status_restarts_total"}
ADMIN_DATABASE_URL = os.environ.get("LIVE_CHECK_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DATABASE = "beryl_test_live_check"
REDIS_URL = os.environ.get("LIVE_CHECK_REDIS_URL", "redis://127.0.0.1:6379/15")
# Signs the instances' tokens; the check mints one to open a wallet.
JWT_KEY = "live-check-signing-key-0123456789abcdef0123"
# Metrics the worker exports once it has published, received, applied and dead-lettered events.
EVENT_METRICS = ("beryl_events_published_total", "beryl_events_consumed_total", "beryl_events_applied_total",
                 "beryl_events_dead_lettered_total", "beryl_events_consumer_lag_messages",
                 "beryl_events_consumer_lag_seconds", "beryl_outbox_lag_events", "beryl_outbox_lag_seconds")
DASHBOARD_VARIABLES = {"namespace": "beryl", "service": ".*", "pod": ".*", "actor": ".*", "domain_actor": ".*"}

results: list[tuple[str, bool, str]] = []


def report(name: str, passed: bool, detail: str) -> None:
    results.append((name, passed, detail))
    print(f"  {'PASS' if passed else 'FAIL'}  {name}: {detail}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, timeout: float = 5, token: str = "") -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
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

    def start(self, args: list[str], env: dict, log: Path, cwd: Path | None = None) -> subprocess.Popen:
        handle = open(log, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)
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
    placeholders = {
        "jwt-secret-key": "0123456789abcdef" * 4,
        "database-password": "placeholder-password",
        "audit-hmac-key": "fedcba9876543210" * 4,
        "emissions-api-key": "placeholder-api-key",
        "payments-api-key": "placeholder-payments-key",
        "payments-webhook-secret": "placeholder-webhook-secret",
        "privacy-master-key": "00112233445566778899aabbccddeeff" * 2,
        "privacy-blind-index-key": "ffeeddccbbaa99887766554433221100" * 2,
    }
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



def tansu_binary(given: str | None) -> str | None:
    """The broker binary: --tansu, BERYL_TANSU_BIN, or the one scripts/kafka.sh keeps."""
    if given or os.environ.get("BERYL_TANSU_BIN"):
        return given or os.environ["BERYL_TANSU_BIN"]
    proc = subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "bin"], capture_output=True, text=True, check=False)
    path = proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 and proc.stdout.strip() else ""
    return path or None


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def start_broker(tansu: str, procs: Processes, work: Path) -> str | None:
    """Starts a Kafka-compatible broker; returns its bootstrap address, or None (reported)."""
    port = free_port()
    data = work / "kafka"
    data.mkdir()
    url = f"tcp://127.0.0.1:{port}"
    # tansu reads the SQLite path relative to its working directory.
    procs.start([tansu, "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "sqlite://tansu.db"], base_env(), work / "kafka.log", cwd=data)
    if not wait_for(lambda: port_open(port), 30, 0.2):
        report("broker", False, f"tansu did not listen on {port}: {(work / 'kafka.log').read_text(errors='replace')[-800:]}")
        return None
    return f"127.0.0.1:{port}"


def start_instances(binary: Path, objects: list[dict], procs: Processes, work: Path, database_url: str,
                    brokers: str) -> dict[str, dict]:
    instances = {}
    for deployment, role in ROLES.items():
        port = free_port()
        manifest_env = pod_environment(objects, deployment)
        env = base_env() | {
            "ENVIRONMENT": "development",
            "SERVICE_ROLE": role,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "METRICS_ENABLED": "true",
            "TRACING_ENABLED": "false",
            "EVENT_BUS": "kafka",
            "KAFKA_BOOTSTRAP_SERVERS": brokers,
            "JWT_SECRET_KEY": JWT_KEY,
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "AUDIT_ENABLED": "true",
            "AUDIT_LOG_FILE": str(work / f"audit-{deployment}.log"),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARN",
            "CONFIG_DIR": str(ROOT / "config"),
            "SHUTDOWN_GRACE_PERIOD": manifest_env.get("SHUTDOWN_GRACE_PERIOD", "25"),
            "FAULT_INJECTION_ENABLED": "true" if role == "api" else "false",
        }
        # The topics and the consumer group of the manifests.
        env |= {k: manifest_env[k] for k in ("KAFKA_INBOUND_TOPICS", "KAFKA_CONSUMER_GROUP") if k in manifest_env}
        proc = procs.start([str(binary), "serve"], env, work / f"{deployment}.log")
        instances[deployment] = {"port": port, "proc": proc, "url": f"http://127.0.0.1:{port}",
                                 "grace": float(env["SHUTDOWN_GRACE_PERIOD"]), "env": env}
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


# --- 4. event bus ----------------------------------------------------------------------------------


def metric_names(inst: dict) -> set[str]:
    body = http("GET", inst["url"] + "/metrics")[1].decode(errors="replace")
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in body.splitlines() if line and not line.startswith("#")}


def produce(tansu: str, brokers: str, topic: str, key: str, value: dict, timeout: float = 30) -> str:
    """Produces one JSON message, retrying until the topic exists (the worker creates its inbound
    topics when its consumer starts); returns the last error, or "" once the broker took it."""
    line = json.dumps({"key": key, "value": value})
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run([tansu, "cat", "produce", topic, "--broker", f"tcp://{brokers}"], input=line,
                              capture_output=True, text=True, env=base_env(), timeout=30, check=False)
        if proc.returncode == 0:
            return ""
        if time.monotonic() >= deadline:
            return (proc.stdout + proc.stderr).strip()[-300:]
        time.sleep(1)


def mint_token(binary: Path, instance: dict, scopes: list[str], subject: str = "live-check") -> tuple[str, str]:
    """A token for `scopes` signed with the instance's key: (token, "") or ("", what went wrong)."""
    args = [str(binary), "token", "mint", "--subject", subject]
    for scope in scopes:
        args += ["--scope", scope]
    mint = subprocess.run(args, env=instance["env"], capture_output=True, text=True, timeout=30, check=False)
    if mint.returncode == 0 and mint.stdout.strip():
        return mint.stdout.strip().splitlines()[-1], ""
    return "", (mint.stdout + mint.stderr).strip()[-300:]


def check_event_bus(binary: Path, instances: dict, tansu: str, brokers: str) -> None:
    api, worker = instances["beryl-core-api"], instances["event-bus"]
    token, failure = mint_token(binary, api, ["fintech:read", "fintech:write"])
    if not token:
        report("event bus", False, f"`token mint` failed: {failure}")
        return

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
        req = urllib.request.Request(api["url"] + path, data=json.dumps(body).encode() if body else None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, {"error": err.read().decode(errors="replace")[:300]}
        except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout, json.JSONDecodeError) as err:
            return 0, {"error": str(err)}

    status, wallet = call("POST", "/api/v1/fintech/wallets", {"currency": "EUR"})
    if status != 201 or "id" not in wallet:
        report("event bus", False, f"POST /api/v1/fintech/wallets answered {status}: {wallet}")
        return
    topic = worker["env"].get("KAFKA_INBOUND_TOPICS", "beryl.fintech.payments").split(",")[0].strip()
    payment = {"event_id": f"live-check-{uuid.uuid4()}", "type": "payment.settled", "schema_version": 1,
               "wallet_id": wallet["id"], "amount": 1250, "currency": "EUR", "reference": "live-check"}
    unknown = payment | {"event_id": f"live-check-{uuid.uuid4()}", "type": "payment.refunded"}
    for message in (payment, unknown):
        error = produce(tansu, brokers, topic, wallet["id"], message)
        if error:
            report("event bus", False, f"cannot produce to {topic}: {error}")
            return

    def credited() -> bool:
        status, body = call("GET", f"/api/v1/fintech/wallets/{wallet['id']}")
        return status == 200 and body.get("balance") == 1250

    started = time.monotonic()
    applied = wait_for(credited, 60)
    exported = wait_for(lambda: set(EVENT_METRICS) <= metric_names(worker), 60) or False
    missing = sorted(set(EVENT_METRICS) - metric_names(worker))
    report("event bus", bool(applied) and exported,
           f"a settled payment produced to {topic} {'credited' if applied else 'did not credit'} wallet {wallet['id']}, "
           f"and a payment.refunded went with it; {time.monotonic() - started:.1f}s later the worker exports "
           + (f"all {len(EVENT_METRICS)} event-bus metrics (dead letters included)" if exported else f"all but {missing}"))


def check_ride(binary: Path, instances: dict) -> None:
    """A ride through the API instance: a driver online, a rider's quote, the ride offered,
    accepted, driven and paid; the mobility metrics then exist."""
    api = instances["beryl-core-api"]
    scopes = ["mobility:read", "mobility:write", "fintech:read", "fintech:write", "fintech:settle"]
    tokens = {}
    for who in ("live-check-driver", "live-check-rider"):
        token, failure = mint_token(binary, api, scopes, who)
        if not token:
            report("ride", False, f"`token mint` failed: {failure}")
            return
        tokens[who] = token

    def call(who: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {tokens[who]}", "Content-Type": "application/json",
                   "Idempotency-Key": str(uuid.uuid4())}
        req = urllib.request.Request(api["url"] + path, data=json.dumps(body).encode() if body is not None else None,
                                     method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, {"error": err.read().decode(errors="replace")[:300]}
        except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout, json.JSONDecodeError) as err:
            return 0, {"error": str(err)}

    driver, rider = "live-check-driver", "live-check-rider"
    steps = []

    def step(who: str, method: str, path: str, body: dict | None, expect: int) -> dict | None:
        status, answer = call(who, method, path, body)
        steps.append(f"{method} {path} {status}")
        if status != expect:
            report("ride", False, f"{method} {path} answered {status}: {answer}")
            return None
        return answer

    driver_wallet = step(driver, "POST", "/api/v1/fintech/wallets", {"currency": "EUR"}, 201)
    rider_wallet = driver_wallet and step(rider, "POST", "/api/v1/fintech/wallets", {"currency": "EUR"}, 201)
    if not rider_wallet or not step(rider, "POST", f"/api/v1/fintech/wallets/{rider_wallet['id']}/deposits",
                                    {"amount": 100000, "reference": "live-check"}, 201):
        return
    profile = {"mode": "car", "plate": "LIVE-1", "seats": 4, "wallet": driver_wallet["id"]}
    if not step(driver, "PUT", "/api/v1/mobility/drivers/me", profile, 201) \
            or not step(driver, "PUT", "/api/v1/mobility/drivers/me/availability", {"availability": "available"}, 200) \
            or not step(driver, "POST", "/api/v1/mobility/drivers/me/location", {"lat": 48.8566, "lon": 2.3522}, 200):
        return
    trip = {"pickup": {"lat": 48.8567, "lon": 2.3523}, "dropoff": {"lat": 48.8738, "lon": 2.2950}, "mode": "car", "currency": "EUR"}
    quote = step(rider, "POST", "/api/v1/mobility/quotes", trip, 201)
    ride = quote and step(rider, "POST", "/api/v1/mobility/rides", {"quote": quote["id"], "wallet": rider_wallet["id"]}, 201)
    if not ride:
        return

    def offered() -> bool:
        status, page = call(driver, "GET", "/api/v1/mobility/rides?role=driver")
        return status == 200 and any(r.get("id") == ride["id"] for r in page.get("items", []))

    if not wait_for(offered, 20):
        report("ride", False, f"ride {ride['id']} was not offered to the driver within 20 s")
        return
    for action, body in (("accept", {}), ("arrive", {}), ("start", {}),
                         ("complete", {"distance_m": quote["distance_m"], "duration_s": quote["duration_s"]})):
        done = step(driver, "POST", f"/api/v1/mobility/rides/{ride['id']}/{action}", body, 200)
        if not done:
            return
    paid = done.get("payment") == "captured"
    report("ride", paid, f"a ride offered, accepted, driven and paid through {len(steps)} calls (fare {done.get('fare')} "
                         f"{done.get('quote', {}).get('currency')}, payment {done.get('payment')})")


# --- 5. fault injection -----------------------------------------------------------------------------


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


def check_fault_alert(binary: Path, prom: str, api: dict, injections: int) -> None:
    # Some traffic first, so that the HTTP series exist.
    for path in ("/health", "/health/ready", "/no-such-route"):
        http("GET", api["url"] + path)
    http("POST", api["url"] + "/graphql", json.dumps({"query": "{ __typename }"}).encode())
    # Fault injection sits behind the guard: it takes an admin token.
    admin, failure = mint_token(binary, api, ["admin"])
    if not admin:
        report("fault injection", False, f"`token mint` failed: {failure}")
        return
    before = actor_failures(api)
    statuses = []
    # Panic the actor, let its supervisor restart it, again, until the supervisor gives up.
    for _ in range(injections):
        if actor_state(api) == "failed":
            break
        status = http("POST", f"{api['url']}/internal/faults/{FAULT_ACTOR}", json.dumps({"kind": "panic"}).encode(), token=admin)[0]
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


# --- 6. metric names ----------------------------------------------------------------------------------


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
    allowed = exported | (SCRAPE_SERIES & recorded) | KUBE_STATE_SERIES
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
           f" (or by Prometheus or kube-state-metrics: {', '.join(sorted(used - exported))})"
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


# --- 7. shutdown ----------------------------------------------------------------------------------------


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
    parser.add_argument("--tansu", help="Kafka-compatible broker binary (default: BERYL_TANSU_BIN, scripts/kafka.sh bin)")
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
        tansu = tansu_binary(args.tansu)
        if not tansu:
            report("broker", False, "no tansu binary: set BERYL_TANSU_BIN or run scripts/kafka.sh install")
            return 1
        brokers = start_broker(tansu, procs, work)
        if brokers is None:
            return 1
        instances = start_instances(args.binary, first, procs, work, database_url, brokers)
        prom = start_prometheus(args.prometheus, instances, procs, work)
        check_rules(prom, instances)
        check_event_bus(args.binary, instances, tansu, brokers)
        check_ride(args.binary, instances)
        check_fault_alert(args.binary, prom, instances["beryl-core-api"], args.injections)
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
