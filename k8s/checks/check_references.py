#!/usr/bin/env python3
"""Consistency of a set of manifests: what a schema cannot see.

  check_references.py FILE_OR_DIR...

References: every Deployment's selector matches its pod labels; every Service, PodDisruptionBudget,
NetworkPolicy, autoscaler and ServiceMonitor selects something that exists; ports, service
accounts, ConfigMaps, Secrets, volumes, TLS secrets, issuers and role bindings named anywhere are
defined. Workload rules: probes on the service's health endpoints, the resources of the
infrastructure document, a hardened security context, a grace period above the service's drain
time, one role per deployment, one audit file per pod. Alert divisors equal the container limits.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

CLUSTER_SCOPED = {"Namespace", "ClusterIssuer", "ClusterRole", "ClusterRoleBinding", "StorageClass"}
ROLES = {"beryl-core-api": "api", "graphql-gateway": "graphql", "event-bus": "worker"}
PROBES = {"startupProbe": "/health/startup", "livenessProbe": "/health/live", "readinessProbe": "/health/ready"}
RESOURCES = {"requests": {"memory": "256Mi", "cpu": "250m"}, "limits": {"memory": "512Mi", "cpu": "500m"}}
SERVICE_PORT = 8000
# Variables the service reads (its configuration contract), and POD_NAME, used to build AUDIT_LOG_FILE.
SERVICE_ENV = {
    "ENVIRONMENT", "LOG_LEVEL", "LOG_FORMAT", "METRICS_ENABLED", "TRACING_ENABLED", "JAEGER_HOST",
    "AUDIT_ENABLED", "AUDIT_LOG_FILE", "EVENT_BUS", "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_INBOUND_TOPICS",
    "KAFKA_CONSUMER_GROUP", "JWT_SECRET_KEY",
    "JWT_SECRET_KEY_PREVIOUS", "DATABASE_URL", "DATABASE_PASSWORD", "REDIS_URL", "HOST", "PORT",
    "SERVICE_ROLE", "SHUTDOWN_GRACE_PERIOD", "FAULT_INJECTION_ENABLED", "CONFIG_DIR", "POD_NAME",
    "JWT_KEY_ID", "JWT_KEY_ID_PREVIOUS", "JWT_PUBLIC_KEY_FILE", "JWT_JWKS_FILE", "JWT_ISSUER", "JWT_AUDIENCE",
    "CORS_ALLOWED_ORIGINS", "OTEL_EXPORTER_OTLP_ENDPOINT",
    "TRUSTED_PROXIES", "SHUTDOWN_DRAIN_DELAY", "JWT_SECRET_KEY_PREVIOUS_UNTIL",
    "AUDIT_HMAC_KEY", "AUDIT_HMAC_KEY_PREVIOUS",
    "PRIVACY_MASTER_KEY", "PRIVACY_MASTER_KEY_PREVIOUS", "PRIVACY_BLIND_INDEX_KEY",
    "ROUTING_URL", "ROUTING_API_KEY", "EMISSIONS_URL", "EMISSIONS_API_KEY",
    "PAYMENTS_URL", "PAYMENTS_API_KEY", "PAYMENTS_WEBHOOK_SECRET", "PAYMENTS_WEBHOOK_SECRET_PREVIOUS",
    "PAYMENTS_WEBHOOK_TOLERANCE",
}


def service_reads(name: str) -> bool:
    """A flat variable of the contract, a librdkafka property (KAFKA_PROPERTY_<NAME>), or the
    nested BERYL__SECTION__KEY form (whose keys the live check validates with the service's own
    `config check`)."""
    return (name in SERVICE_ENV or (name.startswith("KAFKA_PROPERTY_") and len(name) > len("KAFKA_PROPERTY_"))
            or (name.startswith("BERYL__") and name.count("__") >= 2))
# Objects that live outside these manifests but that they legitimately name. The monitoring stack
# is the kube-prometheus-stack release whose name the ServiceMonitor and PrometheusRule select
# (label `release`); its Grafana chart names the Service `<release>-grafana` (port 80, http-web).
MONITORING_NAMESPACE = "beryl-monitoring"
GRAFANA_PORTS = {80, "http-web"}
EXTERNAL_POD_LABELS = {"acme.cert-manager.io/http01-solver"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*", "escalate", "bind", "impersonate"}

errors: list[str] = []


def error(obj: dict, message: str) -> None:
    meta = obj.get("metadata", {})
    errors.append(f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}: {message}")


def load(args: list[str]) -> list[dict]:
    objects = []
    for arg in args:
        path = Path(arg)
        paths = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
        for p in paths:
            objects += [d for d in yaml.safe_load_all(p.read_text(encoding="utf-8")) if isinstance(d, dict)]
    return objects


def selects(selector: dict | None, labels: dict) -> bool:
    """matchLabels/matchExpressions semantics; None or {} selects everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def quantity_bytes(q: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", q)
    if not m:
        raise ValueError(q)
    return float(m.group(1)) * units.get(m.group(2), 1)


def quantity_cores(q: str) -> float:
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


class Index:
    def __init__(self, objects: list[dict]):
        self.objects = objects
        self.by_kind: dict[str, list[dict]] = {}
        for obj in objects:
            self.by_kind.setdefault(obj["kind"], []).append(obj)

    def kind(self, kind: str) -> list[dict]:
        return self.by_kind.get(kind, [])

    def find(self, kind: str, namespace: str | None, name: str) -> dict | None:
        for obj in self.kind(kind):
            meta = obj["metadata"]
            if meta.get("name") == name and (namespace is None or meta.get("namespace") == namespace):
                return obj
        return None

    def pods(self, namespace: str) -> list[tuple[dict, dict]]:
        """(deployment, pod template) of the namespace."""
        return [(d, d["spec"]["template"]) for d in self.kind("Deployment") if d["metadata"].get("namespace") == namespace]

    def namespaces(self) -> set[str]:
        return {o["metadata"]["name"] for o in self.kind("Namespace")}


def check_namespaces(ix: Index) -> None:
    for obj in ix.objects:
        if obj["kind"] not in CLUSTER_SCOPED and not obj["metadata"].get("namespace"):
            error(obj, "no metadata.namespace: it would land in whatever namespace kubectl's context has")


def container_ports(template: dict) -> set:
    ports = set()
    for c in template["spec"].get("containers", []):
        for p in c.get("ports") or []:
            ports.add(p["containerPort"])
            if p.get("name"):
                ports.add(p["name"])
    return ports


def check_deployment(ix: Index, dep: dict, config: dict) -> None:
    ns = dep["metadata"]["namespace"]
    name = dep["metadata"]["name"]
    spec = dep["spec"]
    template = spec["template"]
    labels = template["metadata"].get("labels") or {}
    if not (spec.get("selector") or {}).get("matchLabels"):
        error(dep, "selector without matchLabels")
    if not selects(spec.get("selector"), labels):
        error(dep, f"selector {spec.get('selector')} does not match its pod labels {labels}")
    pod = template["spec"]
    sa = pod.get("serviceAccountName")
    if not sa or not ix.find("ServiceAccount", ns, sa):
        error(dep, f"service account {sa!r} not defined")
    if pod.get("automountServiceAccountToken") is not False:
        error(dep, "automountServiceAccountToken must be false (the service makes no API call)")
    psc = pod.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True or (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        error(dep, "pod securityContext needs runAsNonRoot: true and seccompProfile RuntimeDefault")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    drain = int(config.get("SHUTDOWN_GRACE_PERIOD", 25))
    delay = int(config.get("SHUTDOWN_DRAIN_DELAY", 5))
    if grace <= drain + delay:
        error(dep, f"terminationGracePeriodSeconds {grace} must exceed SHUTDOWN_DRAIN_DELAY {delay} + SHUTDOWN_GRACE_PERIOD {drain}")
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for v in volumes.values():
        claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and not ix.find("PersistentVolumeClaim", ns, claim):
            error(dep, f"volume {v['name']}: claim {claim} not defined")
    containers = pod.get("containers") or []
    if len(containers) != 1:
        error(dep, "expected exactly one container")
    for c in containers:
        check_container(ix, dep, c, volumes, ns, name)


def check_container(ix: Index, dep: dict, c: dict, volumes: dict, ns: str, name: str) -> None:
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
    if ports.get("http") != SERVICE_PORT:
        error(dep, f"container {c['name']}: port 'http' must be {SERVICE_PORT}, the service's port")
    for probe, path in PROBES.items():
        get = (c.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != path or get.get("port") not in ("http", SERVICE_PORT):
            error(dep, f"container {c['name']}: {probe} must GET {path} on port http")
    if c.get("resources") != RESOURCES:
        error(dep, f"container {c['name']}: resources must be {RESOURCES}, found {c.get('resources')}")
    sc = c.get("securityContext") or {}
    hardened = (
        sc.get("allowPrivilegeEscalation") is False
        and sc.get("readOnlyRootFilesystem") is True
        and sc.get("runAsNonRoot") is True
        and sc.get("privileged") in (None, False)
        and (sc.get("capabilities") or {}).get("drop") == ["ALL"]
        and not (sc.get("capabilities") or {}).get("add")
    )
    if not hardened:
        error(dep, f"container {c['name']}: securityContext not hardened: {sc}")
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
    for m in mounts.values():
        if m["name"] not in volumes:
            error(dep, f"container {c['name']}: mount {m['mountPath']} names no volume")
    if "emptyDir" not in volumes.get((mounts.get("/tmp") or {}).get("name", ""), {}):
        error(dep, f"container {c['name']}: read-only root filesystem needs an emptyDir on /tmp")
    env = c.get("env") or []
    names = [e["name"] for e in env]
    for e in env:
        if not service_reads(e["name"]):
            error(dep, f"env {e['name']} is not a variable the service reads")
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref and not ix.find("Secret", ns, ref["name"]):
            error(dep, f"env {e['name']}: secret {ref['name']} not defined")
        ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
        if ref and not ix.find("ConfigMap", ns, ref["name"]):
            error(dep, f"env {e['name']}: configmap {ref['name']} not defined")
        for used in re.findall(r"\$\(([A-Z_]+)\)", e.get("value") or ""):
            if used not in names[: names.index(e["name"])]:
                error(dep, f"env {e['name']} uses $({used}) before it is defined")
    for src in c.get("envFrom") or []:
        ref = src.get("configMapRef") or src.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in src else "Secret"
        target = ix.find(kind, ns, ref["name"])
        if not target:
            error(dep, f"envFrom {kind} {ref['name']} not defined")
        elif kind == "ConfigMap":
            for key in target.get("data") or {}:
                if not service_reads(key):
                    error(target, f"key {key} is not a variable the service reads")
    values = {e["name"]: e.get("value") for e in env}
    if values.get("SERVICE_ROLE") != ROLES.get(name):
        error(dep, f"SERVICE_ROLE must be {ROLES.get(name)!r} for {name}, found {values.get('SERVICE_ROLE')!r}")
    audit = values.get("AUDIT_LOG_FILE") or ""
    if "$(POD_NAME)" not in audit:
        error(dep, "AUDIT_LOG_FILE must contain $(POD_NAME): one audit file per pod on the shared volume")
    elif str(Path(audit).parent) not in mounts:
        error(dep, f"AUDIT_LOG_FILE {audit} is not on a mounted volume")


def check_services(ix: Index) -> None:
    for svc in ix.kind("Service"):
        ns = svc["metadata"]["namespace"]
        selector = svc["spec"].get("selector")
        if not selector:
            error(svc, "no selector")
            continue
        matched = [t for _, t in ix.pods(ns) if selects({"matchLabels": selector}, t["metadata"].get("labels") or {})]
        if not matched:
            error(svc, f"selector {selector} matches no pod")
        for port in svc["spec"].get("ports") or []:
            target = port.get("targetPort", port["port"])
            for t in matched:
                if target not in container_ports(t):
                    error(svc, f"targetPort {target} is not a port of the selected pods")


def check_selectors(ix: Index) -> None:
    for pdb in ix.kind("PodDisruptionBudget"):
        ns = pdb["metadata"]["namespace"]
        deps = [d for d, t in ix.pods(ns) if selects(pdb["spec"].get("selector"), t["metadata"].get("labels") or {})]
        if not deps:
            error(pdb, "selector matches no pod")
        for d in deps:
            low = min_replicas(ix, d)
            if low is not None and pdb["spec"].get("minAvailable", 0) >= low:
                error(pdb, f"minAvailable {pdb['spec']['minAvailable']} >= minimum replicas {low} of {d['metadata']['name']}: no node could ever be drained")
    for hpa in ix.kind("HorizontalPodAutoscaler") + ix.kind("ScaledObject"):
        ref = hpa["spec"]["scaleTargetRef"]
        if not ix.find(ref.get("kind", "Deployment"), hpa["metadata"]["namespace"], ref["name"]):
            error(hpa, f"scale target {ref['name']} not defined")
        low, high = replica_range(hpa)
        if low is None or high is None or low > high:
            error(hpa, f"replica range {low}-{high} invalid")
    for pol in ix.kind("NetworkPolicy"):
        ns = pol["metadata"]["namespace"]
        own = pol["spec"].get("podSelector") or {}
        external = set((own.get("matchLabels") or {})) & EXTERNAL_POD_LABELS
        if own and not external and not any(selects(own, t["metadata"].get("labels") or {}) for _, t in ix.pods(ns)):
            error(pol, f"podSelector {own} matches no pod")
        for rule in (pol["spec"].get("ingress") or []) + (pol["spec"].get("egress") or []):
            for peer in rule.get("from", []) + rule.get("to", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    if not any(selects(peer["podSelector"], t["metadata"].get("labels") or {}) for _, t in ix.pods(ns)):
                        error(pol, f"peer {peer['podSelector']} matches no pod of namespace {ns}")
    for sm in ix.kind("ServiceMonitor"):
        namespaces = (sm["spec"].get("namespaceSelector") or {}).get("matchNames") or [sm["metadata"]["namespace"]]
        services = [s for s in ix.kind("Service") if s["metadata"]["namespace"] in namespaces
                    and selects(sm["spec"]["selector"], s["metadata"].get("labels") or {})]
        if not services:
            error(sm, "selects no Service")
        for ep in sm["spec"].get("endpoints") or []:
            for s in services:
                if ep.get("port") not in {p.get("name") for p in s["spec"]["ports"]}:
                    error(sm, f"endpoint port {ep.get('port')} is not a port of service {s['metadata']['name']}")
            if ep.get("path", "/metrics") != "/metrics":
                error(sm, "the service serves its metrics on /metrics")


def min_replicas(ix: Index, dep: dict) -> int | None:
    for hpa in ix.kind("HorizontalPodAutoscaler") + ix.kind("ScaledObject"):
        if hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]:
            return replica_range(hpa)[0]
    return dep["spec"].get("replicas")


def replica_range(obj: dict) -> tuple[int | None, int | None]:
    spec = obj["spec"]
    if obj["kind"] == "ScaledObject":
        return spec.get("minReplicaCount"), spec.get("maxReplicaCount")
    return spec.get("minReplicas", 1), spec.get("maxReplicas")


def check_ingress(ix: Index) -> None:
    for ing in ix.kind("Ingress"):
        ns = ing["metadata"]["namespace"]
        tls_hosts = {}
        for tls in ing["spec"].get("tls") or []:
            cert = next((c for c in ix.kind("Certificate") if c["metadata"]["namespace"] == ns
                         and c["spec"]["secretName"] == tls.get("secretName")), None)
            if not cert:
                error(ing, f"TLS secret {tls.get('secretName')} is issued by no Certificate of namespace {ns}")
            for host in tls.get("hosts") or []:
                tls_hosts[host] = tls.get("secretName")
                if cert and host not in cert["spec"].get("dnsNames", []):
                    error(ing, f"host {host} is not a dnsName of Certificate {cert['metadata']['name']}")
        for rule in ing["spec"].get("rules") or []:
            if rule.get("host") not in tls_hosts:
                error(ing, f"host {rule.get('host')} has no TLS")
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                port = backend["port"].get("name") or backend["port"].get("number")
                if ns == MONITORING_NAMESPACE and not ix.find("Service", ns, backend["name"]):
                    releases = sorted({o["metadata"].get("labels", {}).get("release") for o in ix.objects
                                       if o.get("kind") in ("ServiceMonitor", "PrometheusRule")} - {None})
                    expected = [f"{r}-grafana" for r in releases]
                    if backend["name"] not in expected:
                        error(ing, f"backend service {backend['name']} is not the Grafana of the monitoring release "
                                   f"({', '.join(expected) or 'no ServiceMonitor or PrometheusRule names a release'})")
                    elif port not in GRAFANA_PORTS:
                        error(ing, f"backend port {port} is not the Grafana service's port (80 or http-web)")
                    continue
                svc = ix.find("Service", ns, backend["name"])
                if not svc:
                    error(ing, f"backend service {backend['name']} not defined")
                    continue
                port = backend["port"].get("name") or backend["port"].get("number")
                if port not in {p.get("name") for p in svc["spec"]["ports"]} | {p["port"] for p in svc["spec"]["ports"]}:
                    error(ing, f"backend port {port} is not a port of service {backend['name']}")
    for cert in ix.kind("Certificate"):
        ref = cert["spec"]["issuerRef"]
        kind = ref.get("kind", "Issuer")
        issuer = ix.find(kind, None if kind == "ClusterIssuer" else cert["metadata"]["namespace"], ref["name"])
        if not issuer:
            error(cert, f"{kind} {ref['name']} not defined")


def check_rbac(ix: Index) -> None:
    for role in ix.kind("Role") + ix.kind("ClusterRole"):
        for rule in role.get("rules") or []:
            if set(rule.get("verbs") or []) & WRITE_VERBS:
                error(role, f"write verbs {sorted(set(rule['verbs']) & WRITE_VERBS)}: the service only reads")
            if {"secrets", "*"} & set(rule.get("resources") or []):
                error(role, "grants access to secrets")
    if ix.kind("ClusterRole") or ix.kind("ClusterRoleBinding"):
        errors.append("cluster-wide RBAC is not needed by the service")
    for rb in ix.kind("RoleBinding"):
        ns = rb["metadata"]["namespace"]
        if not ix.find(rb["roleRef"]["kind"], ns, rb["roleRef"]["name"]):
            error(rb, f"role {rb['roleRef']['name']} not defined")
        for subject in rb.get("subjects") or []:
            if subject["kind"] == "ServiceAccount" and not ix.find("ServiceAccount", subject.get("namespace", ns), subject["name"]):
                error(rb, f"service account {subject['name']} not defined")
    for sa in ix.kind("ServiceAccount"):
        if not any(d["spec"]["template"]["spec"].get("serviceAccountName") == sa["metadata"]["name"] for d in ix.kind("Deployment")):
            error(sa, "used by no deployment")


def check_alert_limits(ix: Index) -> None:
    """The CPU and memory alerts divide by the container limits: they must be the deployments'."""
    limits = {(c["resources"]["limits"]["cpu"], c["resources"]["limits"]["memory"])
              for d in ix.kind("Deployment") for c in d["spec"]["template"]["spec"]["containers"]}
    if len(limits) != 1:
        errors.append(f"the deployments have different limits {limits}; the alerts assume one")
        return
    cpu, memory = limits.pop()
    for rule_obj in ix.kind("PrometheusRule"):
        for group in rule_obj["spec"]["groups"]:
            for rule in group["rules"]:
                expr = " ".join(rule.get("expr", "").split())
                m = re.search(r"beryl_process_cpu_seconds_total.*?\)\) / ([0-9.]+)", expr)
                if m and float(m.group(1)) != quantity_cores(cpu):
                    error(rule_obj, f"{rule['alert']} divides by {m.group(1)} cores, the CPU limit is {cpu}")
                m = re.search(r"beryl_process_resident_memory_bytes\) / ([0-9]+)", expr)
                if m and float(m.group(1)) != quantity_bytes(memory):
                    error(rule_obj, f"{rule['alert']} divides by {m.group(1)} bytes, the memory limit is {memory}")


def check_keda(ix: Index) -> None:
    for so in ix.kind("ScaledObject"):
        for trigger in so["spec"].get("triggers") or []:
            if trigger["type"] != "prometheus":
                continue
            query = trigger["metadata"]["query"]
            labels = dict(re.findall(r'(\w+)="([^"]*)"', query))
            if not ix.find("Service", labels.get("namespace"), labels.get("service", "")):
                error(so, f"query selects service {labels.get('service')!r} in namespace {labels.get('namespace')!r}, which is not defined")
            target = so["spec"]["scaleTargetRef"]["name"]
            svc = ix.find("Service", labels.get("namespace"), labels.get("service", ""))
            dep = ix.find("Deployment", so["metadata"]["namespace"], target)
            if svc and dep and not selects({"matchLabels": svc["spec"]["selector"]}, dep["spec"]["template"]["metadata"]["labels"]):
                error(so, f"query measures service {labels.get('service')}, whose pods are not those of {target}")


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    ix = Index(load(sys.argv[1:]))
    check_namespaces(ix)
    for dep in ix.kind("Deployment"):
        cms = [ix.find("ConfigMap", dep["metadata"]["namespace"], (s.get("configMapRef") or {}).get("name", ""))
               for c in dep["spec"]["template"]["spec"]["containers"] for s in c.get("envFrom") or []]
        config = {k: v for cm in cms if cm for k, v in (cm.get("data") or {}).items()}
        check_deployment(ix, dep, config)
    images = {c["image"] for d in ix.kind("Deployment") for c in d["spec"]["template"]["spec"]["containers"]}
    if len(images) > 1:
        errors.append(f"the three workloads must run one image, found {sorted(images)}")
    if set(ROLES) - {d["metadata"]["name"] for d in ix.kind("Deployment")}:
        errors.append(f"missing deployments: {sorted(set(ROLES) - {d['metadata']['name'] for d in ix.kind('Deployment')})}")
    check_services(ix)
    check_selectors(ix)
    check_ingress(ix)
    check_rbac(ix)
    check_alert_limits(ix)
    check_keda(ix)
    for e in errors:
        print(f"check_references: {e}", file=sys.stderr)
    if errors:
        print(f"check_references: {len(errors)} problem(s) in {len(ix.objects)} objects", file=sys.stderr)
        return 1
    print(f"check_references: {len(ix.objects)} objects consistent "
          f"({len(ix.kind('Deployment'))} deployments, {len(ix.kind('Service'))} services, "
          f"{len(ix.kind('NetworkPolicy'))} network policies)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
