"""local.settings.json: the app settings of a local run, as Azure Functions Core Tools reads them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from shared.config import PROJECT_ROOT, Settings

SAMPLE = PROJECT_ROOT / "local.settings.sample.json"
LOCAL = PROJECT_ROOT / "local.settings.json"

# Names the Functions host and its bindings read, beyond our Settings model.
HOST_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME": ("python", "Language worker (required by the Functions host)."),
    "AzureWebJobsStorage": (
        "UseDevelopmentStorage=true",
        "Host storage and blob trigger connection; UseDevelopmentStorage=true = Azurite, started by devhost.",
    ),
    "ServiceBusConnection": (
        "",
        "Service Bus connection of the topic triggers (or ServiceBusConnection__fullyQualifiedNamespace).",
    ),
}


def _azure_name(name: str, field) -> str:
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    return str(choices[-1]) if choices else name


def sample_settings() -> dict:
    values: dict[str, str] = {k: v for k, (v, _) in HOST_SETTINGS.items()}
    docs: dict[str, str] = {k: d for k, (_, d) in HOST_SETTINGS.items()}
    for name, field in Settings.model_fields.items():
        azure_name = _azure_name(name, field)
        if azure_name in values:
            azure_name = name  # e.g. STORAGE_CONNECTION_STRING, which falls back to AzureWebJobsStorage
        default = field.default
        if isinstance(default, Path):
            default = ""  # VAR_DIR: empty means the project's var/
        if isinstance(default, (list, tuple)):
            default = json.dumps(list(default))  # how pydantic-settings reads a sequence from the environment
        values[azure_name] = (
            "" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        )
        docs[azure_name] = field.description or ""
    return {"IsEncrypted": False, "Values": values, "_documentation": docs}


def render_sample() -> str:
    return json.dumps(sample_settings(), indent=2) + "\n"


def load_into_environment(path: Path | None = None) -> Path:
    """Copy Values into os.environ without overriding what the shell set; empty values mean unset."""
    source = path or (LOCAL if LOCAL.exists() else SAMPLE)
    values = json.loads(source.read_text()).get("Values", {})
    for key, value in values.items():
        if value not in ("", None) and key not in os.environ:
            os.environ[key] = str(value)
    return source
