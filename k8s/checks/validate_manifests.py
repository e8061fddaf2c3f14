#!/usr/bin/env python3
"""Strict schema validation of Kubernetes manifests, offline (kubernetes-validate's bundled schemas).

  validate_manifests.py FILE_OR_DIR...

Every object is validated in strict mode (an unknown field is an error) against the oldest and
the newest Kubernetes version the schemas cover, so that the manifests work on every cluster from
1.25 on (the infrastructure document asks for 1.24 or later; 1.25 is the oldest schema bundled).
An apiVersion/kind without a schema is an error, except the custom resources listed in CRDS,
which validate_crds.mjs checks against their operators' schemas.
"""

from __future__ import annotations

import sys
from pathlib import Path

import kubernetes_validate
import yaml
from kubernetes_validate.utils import all_versions

CRDS = {
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "ClusterIssuer"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("keda.sh/v1alpha1", "ScaledObject"),
}
VERSIONS = sorted({all_versions()[0], all_versions()[-1]}, key=lambda v: tuple(int(p) for p in v.split(".")))


def manifest_files(args: list[str]) -> list[Path]:
    files: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        else:
            files.append(path)
    return files


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    errors = 0
    objects = 0
    for path in manifest_files(sys.argv[1:]):
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
        except yaml.YAMLError as err:
            print(f"{path}: not YAML: {err}", file=sys.stderr)
            errors += 1
            continue
        for doc in docs:
            objects += 1
            where = f"{path}: {doc.get('kind', '?')}/{doc.get('metadata', {}).get('name', '?')}"
            if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
                print(f"{where}: not a Kubernetes object (apiVersion and kind required)", file=sys.stderr)
                errors += 1
                continue
            if (doc["apiVersion"], doc["kind"]) in CRDS:
                continue
            for version in VERSIONS:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.SchemaNotFoundError:
                    print(f"{where}: {doc['apiVersion']} {doc['kind']} unknown to Kubernetes {version}", file=sys.stderr)
                    errors += 1
                except kubernetes_validate.ValidationError as err:
                    location = "/".join(str(p) for p in err.path)
                    print(f"{where}: invalid for Kubernetes {version} at {location or '(root)'}: {err.message}", file=sys.stderr)
                    errors += 1
    if errors:
        print(f"validate_manifests: {errors} error(s) in {objects} objects", file=sys.stderr)
        return 1
    print(f"validate_manifests: {objects} objects valid (strict) for Kubernetes {' and '.join(VERSIONS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
