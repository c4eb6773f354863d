"""Every setting of the service, with its default, allowed range and meaning, read once.

`Settings.from_env()` reads the `CREDIT_RISK_*` variables (and `BENTO_BASE_IMAGE`) once, at
the service's start, and the parts get what they need from the object it returns. A value
outside its range stops the service with one line naming the variable, the value and what is
allowed. Nothing else in this package reads the environment.

    python -m credit_risk.settings        # the reference table, as Markdown
"""

import ipaddress
import os
import sys
from pathlib import Path
from typing import Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PREFIX = "CREDIT_RISK_"
# Variables whose name is not PREFIX + the field's name in capitals.
OTHER_NAMES = {"base_image": "BENTO_BASE_IMAGE"}


def default_state_dir() -> Path:
    """Runtime state (logs, keys file, reports) lives outside the source tree."""
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "credit-risk"


class SettingsError(ValueError):
    """A setting is invalid; the message is one line naming the variable and the rule."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # --8<-- [start:model]
    model: str = Field("credit_risk:latest", min_length=1,
                       description="Stored model to serve, `name:version`; pin a version "
                                   "to roll back")
    # --8<-- [end:model]
    runtime: Literal["sklearn", "onnx"] = Field("sklearn",
                                                description="What scores: the sklearn "
                                                            "pipeline, or its ONNX export "
                                                            "(`model.onnx`) in ONNX Runtime")
    # --8<-- [start:scaling]
    # How /score scales. What these defaults give on a 2-core machine is measured by
    # `make bench` (docs/benchmarks.md); the in-flight bound stops the queue from growing
    # without limit, it does not by itself keep p99 inside the 250 ms objective.
    micro_batch_size: int = Field(64, ge=1, le=500,
                                  description="Most waiting /score requests one model call takes "
                                              "(1 turns batching off)")
    max_in_flight: int = Field(128, ge=1, le=10_000,
                               description="Requests inside one worker before more get a 503")
    cache_entries: int = Field(10_000, ge=0, le=1_000_000,
                               description="Answers the /score cache keeps (0 turns it off)")
    cache_max_age_s: float = Field(300, gt=0, le=86_400,
                                   description="Seconds a cached answer stays valid")
    # --8<-- [end:scaling]
    # Who may call, and how much
    allow_anonymous: bool = Field(False, description="Serve requests without an API key "
                                                     "(local demos only)")
    api_keys_file: Path | None = Field(None, description="Keys file holding key hashes "
                                                         "(default: `<state_dir>/api-keys.jsonl`)")
    rate_limit_per_s: float = Field(50, ge=0, le=100_000,
                                    description="Requests per second per key and worker "
                                                "(0 turns the limit off)")
    rate_burst: int = Field(100, ge=1, le=100_000,
                            description="Requests a key may send at once before the rate applies")
    max_body_bytes: int = Field(2**20, ge=1_024, le=64 * 2**20,
                                description="Largest request body, in bytes (413 above)")
    body_timeout_s: float = Field(5, gt=0, le=60,
                                  description="Seconds a client may take to send its request "
                                              "body (408 after), while holding no in-flight "
                                              "slot; keep it under the 10 s request timeout "
                                              "(504)")
    max_header_bytes: int = Field(16 * 2**10, ge=1_024, le=2**20,
                                  description="Largest total size of a request's header names "
                                              "and values, in bytes (431 above)")
    metrics_networks: str = Field("127.0.0.0/8,::1/128",
                                  json_schema_extra={"allowed": "comma-separated networks "
                                                                "(CIDR)"},
                                  description="Networks that read /metrics without a key")
    # Where state goes
    state_dir: Path = Field(default_factory=default_state_dir,
                            description="Folder for runtime state (default: "
                                        "`$XDG_STATE_HOME/credit-risk` or "
                                        "`~/.local/state/credit-risk`)")
    log_dir: Path | None = Field(None, description="Prediction and audit logs "
                                                   "(default: `<state_dir>/logs`)")
    log_key_file: Path | None = Field(None, description="Key that seals applicants' values in "
                                                        "the prediction log (AES-GCM; `python "
                                                        "-m ops.privacy keygen`); unset: plain")
    # Integrity
    signing_public_key: Path | None = Field(None, description="Public key the model's signature "
                                                              "must match; unset: not checked")
    signing_key: Path | None = Field(None, description="Private key that training signs models "
                                                       "with; unset: unsigned (training only)")
    # Image
    base_image: str = Field("python:3.11-slim-bookworm", min_length=1,
                            description="Base image `bentoml build` writes into the Dockerfile")

    @field_validator("metrics_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                ipaddress.ip_network(part.strip())
        return value

    @property
    def keys_file(self) -> Path:
        return self.api_keys_file or self.state_dir / "api-keys.jsonl"

    @property
    def logs(self) -> Path:
        return self.log_dir or self.state_dir / "logs"

    @property
    def networks(self) -> list:
        return [ipaddress.ip_network(p.strip()) for p in self.metrics_networks.split(",")
                if p.strip()]

    @classmethod
    def variable(cls, name: str) -> str:
        return OTHER_NAMES.get(name, PREFIX + name.upper())

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        """The settings from `env` (default os.environ); raises SettingsError on a bad value."""
        env = os.environ if env is None else env
        given = {name: env[cls.variable(name)] for name in cls.model_fields
                 if env.get(cls.variable(name), "") != ""}
        try:
            return cls(**given)
        except ValidationError as error:
            first = error.errors()[0]
            name = str(first["loc"][0])
            raise SettingsError(
                f"{cls.variable(name)}={given.get(name)!r} is not allowed: "
                f"{first['msg'][0].lower()}{first['msg'][1:]} ({allowed(name)})") from None


def allowed(name: str) -> str:
    """What a field accepts, in words."""
    field = Settings.model_fields[name]
    bounds = {name: getattr(m, name) for m in field.metadata
              for name in ("ge", "gt", "le") if hasattr(m, name)}
    if field.json_schema_extra:
        return field.json_schema_extra["allowed"]
    if get_origin(field.annotation) is Literal:
        return " or ".join(f"`{choice}`" for choice in get_args(field.annotation))
    kind = {int: "a whole number", float: "a number", bool: "true or false (1 or 0)",
            str: "text"}.get(field.annotation, "a path")
    parts = [kind]
    if "ge" in bounds or "gt" in bounds:
        parts.append(f"from {bounds.get('ge', bounds.get('gt'))}"
                     + (" (exclusive)" if "gt" in bounds else ""))
    if "le" in bounds:
        parts.append(f"to {bounds['le']}")
    return " ".join(parts)


def reference() -> str:
    """The Markdown table of every variable; docs and README include it, a test compares."""
    lines = ["| variable | default | allowed | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "(see meaning)" if field.default_factory or field.default is None \
            else f"`{field.default}`"
        lines.append(f"| `{Settings.variable(name)}` | {default} | {allowed(name)} "
                     f"| {field.description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference())
