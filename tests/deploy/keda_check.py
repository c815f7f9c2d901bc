"""Checks KEDA objects against what one KEDA release accepts, as written down
in keda_facts.py: unknown fields where the chart writes (refused by a strict
API server), enums, int32 minimums, ScaledObject's CEL rule min <= max, and
the azure-pipelines scaler's reading of trigger metadata (keys it reads,
exclusive keys, booleans). Structure and types are keda_models_check.mjs's.

    python keda_check.py <release, a key of keda_facts.RELEASES> <objects.json>...

Each objects file is a JSON list of objects. Prints one line per error
("<file name> <Kind> <name>: <path>: <message>") and exits 1 when there is any.
"""
import json
import os
import sys

import keda_facts as facts


def fields_at(obj, path):
    """(concrete path, value) pairs for a field path, starting at the object."""
    values = [("", obj)]
    for part in path.replace("[]", ".[]").split(".")[1:]:
        step = []
        for where, value in values:
            if part == "[]":
                if isinstance(value, list):
                    step += [(f"{where}[{i}]", item) for i, item in enumerate(value)]
            elif isinstance(value, dict) and part in value:
                step.append((f"{where}.{part}", value[part]))
        values = step
    return values


def check(release, obj):
    """[(path, message)] for one object under one release."""
    kind = obj.get("kind")
    errors = []
    if kind not in facts.FIELDS:
        return [(".kind", f"{kind!r} is not a kind the chart creates")]
    if obj.get("apiVersion") != facts.API_VERSION:
        errors.append((".apiVersion", f"{obj.get('apiVersion')!r}: KEDA serves {facts.API_VERSION}"))
    for path, names in facts.FIELDS[kind].items():
        added = facts.FIELDS_ADDED.get((kind, path), {})
        allowed = names | {name for name, since in added.items() if since <= release}
        for where, value in fields_at(obj, path):
            if not isinstance(value, dict):
                continue
            for name in sorted(set(value) - allowed):
                errors.append((where or ".", f"unknown field {name!r}"))
    for enum_kind, path, steps in facts.ENUMS:
        allowed = None
        for since, values in steps:
            if since <= release:
                allowed = values
        if enum_kind != kind or allowed is None:
            continue
        for where, value in fields_at(obj, path):
            if value not in allowed:
                errors.append((where, f"{value!r} is not one of {sorted(allowed)}"))
    for minimum_kind, path, since, minimum in facts.MINIMUMS:
        if minimum_kind != kind:
            continue
        for where, value in fields_at(obj, path):
            if not isinstance(value, int) or isinstance(value, bool):
                errors.append((where, f"{value!r} is not an integer"))
            elif not facts.INT32[0] <= value <= facts.INT32[1]:
                errors.append((where, f"{value} is out of int32 range"))
            elif since <= release and value < minimum:
                errors.append((where, f"{value} is less than the minimum of {minimum}"))
    rule = facts.REPLICA_BOUNDS_RULE
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    if kind == rule["kind"] and rule["from"] <= release and "minReplicaCount" in spec:
        maximum = spec.get("maxReplicaCount", rule["max_when_unset"])
        if isinstance(spec["minReplicaCount"], int) and isinstance(maximum, int) and spec["minReplicaCount"] > maximum:
            errors.append((".spec", "minReplicaCount must be less than or equal to maxReplicaCount"))
    for where, trigger in fields_at(obj, ".spec.triggers[]"):
        if not isinstance(trigger, dict) or trigger.get("type") != "azure-pipelines":
            continue
        metadata = trigger.get("metadata") if isinstance(trigger.get("metadata"), dict) else {}
        for key in sorted(metadata):
            since = facts.SCALER_KEYS.get(key)
            if since is None or since > release:
                errors.append((f"{where}.metadata.{key}", "the azure-pipelines scaler of this release does not read it"))
            elif key in facts.SCALER_BOOLS and metadata[key] not in facts.GO_BOOLS:
                errors.append((f"{where}.metadata.{key}", f"{metadata[key]!r} is not a boolean the scaler parses"))
        for first, second in facts.SCALER_EXCLUSIVE:
            if metadata.get(first) and metadata.get(second):
                errors.append((f"{where}.metadata", f"the scaler refuses {first} together with {second}"))
    return errors


def main(release_name, objects_paths):
    release = facts.RELEASES[release_name]
    failures = []
    for objects_path in objects_paths:
        with open(objects_path) as f:
            objects = json.load(f)
        for obj in objects:
            where = f"{os.path.basename(objects_path)} {obj.get('kind')} {obj.get('metadata', {}).get('name')}"
            failures += [f"{where}: {path}: {message}" for path, message in check(release, obj)]
    for line in failures:
        print(line)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
