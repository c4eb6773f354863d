"""Describe a BentoML service without serving it: its OpenAPI spec and the models it loads.

Run it in a separate process with the project folder as working directory (`-m` puts that
folder's modules on the path). Importing a service runs its module, and the credit-risk
service loads and verifies its model at import:

    python -m handbook.bentoml_service service:CreditRisk facts.json
"""

import importlib
import json
import sys
from pathlib import Path

import bentoml


def describe(target: str) -> dict:
    module_name, _, class_name = target.partition(":")
    service = getattr(importlib.import_module(module_name), class_name)
    models = []
    for reference in service.models:
        stored = bentoml.models.get(reference.tag)
        models.append({"name": stored.tag.name, "version": stored.tag.version,
                       "labels": dict(stored.info.labels),
                       "metadata": dict(stored.info.metadata)})
    return {"openapi": service.openapi_spec.asdict(), "models": models}


if __name__ == "__main__":
    target, out = sys.argv[1:3]
    Path(out).write_text(json.dumps(describe(target), indent=1, default=str))
