"""Every setting of the app, named exactly as its Azure app setting.

Settings come from the environment (Azure app settings, or `local.settings.json`
"Values" loaded by devhost). They are validated once at start-up: a bad value
stops the host with a message that names the setting and says how to fix it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Azurite's published development account; only ever used against a local emulator.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


_LOCAL_ISSUER = "http://localhost:7071/local-issuer"


class ConfigError(RuntimeError):
    """Raised at start-up when a setting is missing or malformed."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # --- runtime -------------------------------------------------------------
    APP_ENV: Literal["local", "test", "azure"] = Field(
        "local", description="Where the app runs: 'local' (embedded defaults), 'test' or 'azure'."
    )
    VAR_DIR: Path = Field(
        PROJECT_ROOT / "var",
        description="Folder for local state: embedded Postgres data, Azurite data, local signing keys.",
    )
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Minimum log level.")

    # --- database -------------------------------------------------------------
    DATABASE_URL: str | None = Field(
        None,
        description="PostgreSQL DSN (postgresql://user:pass@host:5432/db?sslmode=require). "
        "Unset: the embedded server under VAR_DIR/pg is started.",
    )
    DATABASE_POOL_MIN: int = Field(1, ge=0, le=100, description="Minimum connections in the pool.")
    DATABASE_POOL_MAX: int = Field(10, ge=1, le=500, description="Maximum connections in the pool.")

    # --- blob storage ---------------------------------------------------------
    STORAGE_CONNECTION_STRING: str | None = Field(
        None,
        validation_alias=AliasChoices("STORAGE_CONNECTION_STRING", "AzureWebJobsStorage"),
        description="Blob storage connection string. Unset locally: devhost starts Azurite and sets it.",
    )
    STORAGE_ACCOUNT_URL: str | None = Field(
        None,
        description="https://<account>.blob.core.windows.net; used with managed identity when "
        "STORAGE_CONNECTION_STRING is unset in Azure (SAS then uses user delegation keys).",
    )
    AZURITE_BLOB_PORT: int = Field(10000, ge=0, le=65535, description="Port devhost gives Azurite's blob service.")

    # --- bus ------------------------------------------------------------------
    BUS_TRANSPORT: Literal["postgres", "servicebus"] = Field(
        "postgres", description="'postgres': local transport in the database; 'servicebus': Azure Service Bus."
    )
    SERVICEBUS_CONNECTION: str | None = Field(
        None,
        validation_alias=AliasChoices("SERVICEBUS_CONNECTION", "ServiceBusConnection"),
        description="Service Bus connection string (Endpoint=sb://...). Needed when BUS_TRANSPORT=servicebus "
        "unless SERVICEBUS_CONNECTION__fullyQualifiedNamespace is set.",
    )
    SERVICEBUS_NAMESPACE: str | None = Field(
        None,
        validation_alias=AliasChoices("SERVICEBUS_NAMESPACE", "ServiceBusConnection__fullyQualifiedNamespace"),
        description="<ns>.servicebus.windows.net, used with managed identity.",
    )
    # Unset = the per-subscription values declared in shared/bus/topology.py, which infra/ renders for
    # Service Bus too; set only to override them for the local transport (e.g. short locks in a demo).
    BUS_LOCK_DURATION_SECONDS: int | None = Field(
        None, ge=5, le=300, description="Override of the topology's peek-lock duration (local transport)."
    )
    BUS_MAX_DELIVERY_COUNT: int | None = Field(
        None, ge=1, le=2000, description="Override of the topology's deliveries before dead-lettering (local)."
    )
    BUS_DUPLICATE_DETECTION_MINUTES: int | None = Field(
        None, ge=1, le=10080, description="Override of the topology's duplicate-detection window (local)."
    )
    OUTBOX_RELAY_SCHEDULE: str = Field(
        "*/10 * * * * *",
        description="NCRONTAB (with seconds) of the outbox relay timer; the Functions host resolves "
        "%OUTBOX_RELAY_SCHEDULE% in the trigger from this setting.",
    )
    OUTBOX_RELAY_INTERVAL_MS: int = Field(
        1000,
        ge=10,
        le=60000,
        description="How often the background relay polls the outbox when no commit NOTIFY woke it.",
    )

    # --- identity -------------------------------------------------------------
    AUTH_ISSUER: str = Field(
        _LOCAL_ISSUER,
        description="Expected `iss` of bearer tokens (Entra: https://login.microsoftonline.com/<tenant>/v2.0).",
    )
    AUTH_AUDIENCE: str = Field("api://stock-marketplace", description="Expected `aud` of bearer tokens.")
    AUTH_JWKS_URL: str | None = Field(
        None, description="JWKS endpoint of the issuer. Unset: the local issuer's key pair in VAR_DIR/auth is used."
    )
    AUTH_LEEWAY_SECONDS: int = Field(30, ge=0, le=300, description="Clock skew allowed on exp/nbf/iat.")
    RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE: int = Field(
        600, ge=1, description="Requests a signed-in caller may make per minute before 429."
    )
    RATE_LIMIT_PER_IP_PER_MINUTE: int = Field(300, ge=1, description="Anonymous requests per client IP per minute.")
    TRUSTED_PROXY_HOPS: int = Field(
        1,
        ge=1,
        le=5,
        description="Proxies of ours that append to X-Forwarded-For (Functions front end: 1, "
        "plus Front Door: 2); the client IP is that many hops from the right.",
    )

    # --- ingestion ---
    # --- processing and ML ---
    # --- search ---
    SEARCH_BACKEND: Literal["postgres", "azure"] = Field(
        "postgres",
        description="'postgres': pgvector HNSW + full text in the database (embedded default); "
        "'azure': Azure AI Search (needs AZURE_SEARCH_ENDPOINT).",
    )
    AZURE_SEARCH_ENDPOINT: str | None = Field(None, description="https://<service>.search.windows.net")
    AZURE_SEARCH_API_KEY: str | None = Field(
        None, description="Admin key of the search service; unset in Azure: managed identity is used."
    )
    AZURE_SEARCH_INDEX: str = Field("images", description="Name of the search index (alias) queries go to.")
    # --- moderation ---
    # --- commerce ---
    STRIPE_SECRET_KEY: str = Field(
        "sk_test_local_standin", description="Stripe secret key (sk_test_... or sk_live_...)."
    )
    STRIPE_WEBHOOK_SECRET: str = Field(
        "whsec_local_standin", description="Signing secret of the Stripe webhook endpoint (whsec_...)."
    )
    STRIPE_API_BASE: str | None = Field(
        None,
        description="Base URL of the Stripe API. Unset locally: devhost starts the Stripe stand-in and sets it; "
        "unset in Azure: https://api.stripe.com.",
    )
    STRIPE_STANDIN_PORT: int = Field(12111, ge=0, le=65535, description="Port devhost gives the Stripe stand-in.")
    PUBLIC_BASE_URL: str = Field(
        "http://localhost:7071",
        description="Where buyers reach the app; Stripe Checkout returns them to URLs under it.",
    )

    # --- telemetry ------------------------------------------------------------
    APPLICATIONINSIGHTS_CONNECTION_STRING: str | None = Field(
        None, description="Set to send traces and logs to Azure Monitor (Application Insights)."
    )
    OTEL_CONSOLE_EXPORT: bool = Field(False, description="Print spans to stdout (debugging).")

    # --- devhost --------------------------------------------------------------
    DEVHOST_PORT: int = Field(7071, ge=1, le=65535, description="Port devhost serves HTTP functions on.")

    @field_validator("DATABASE_URL")
    @classmethod
    def _dsn_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// (e.g. postgresql://user:pass@host:5432/db)")
        return value

    @field_validator("SERVICEBUS_CONNECTION")
    @classmethod
    def _sb_conn(cls, value: str | None) -> str | None:
        if value is not None and "Endpoint=sb://" not in value:
            raise ValueError("must be a Service Bus connection string containing Endpoint=sb://")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.DATABASE_POOL_MIN > self.DATABASE_POOL_MAX:
            raise ValueError("DATABASE_POOL_MIN must not exceed DATABASE_POOL_MAX")
        if self.BUS_TRANSPORT == "servicebus" and not (self.SERVICEBUS_CONNECTION or self.SERVICEBUS_NAMESPACE):
            raise ValueError(
                "BUS_TRANSPORT=servicebus needs SERVICEBUS_CONNECTION or ServiceBusConnection__fullyQualifiedNamespace"
            )
        if self.APP_ENV == "azure" and self.DATABASE_URL is None:
            raise ValueError("DATABASE_URL is required when APP_ENV=azure (the embedded server is local only)")
        if self.APP_ENV == "azure" and not self.AUTH_JWKS_URL:
            # The local issuer's key sits in a file: whoever has it could mint admin tokens.
            raise ValueError("AUTH_JWKS_URL is required when APP_ENV=azure (the local token issuer is local only)")
        if self.APP_ENV == "azure" and self.AUTH_ISSUER == _LOCAL_ISSUER:
            raise ValueError("AUTH_ISSUER must name the real identity provider when APP_ENV=azure")
        return self

    @property
    def auth_dir(self) -> Path:
        return self.VAR_DIR / "auth"


def load_settings(**overrides: object) -> Settings:
    """Validate the environment once; turn pydantic's errors into a start-up message a person can act on."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            field = Settings.model_fields.get(where)
            hint = f" ({field.description})" if field is not None and field.description else ""
            lines.append(f"  - {where}: {err['msg']}{hint}")
        raise ConfigError(
            "Invalid configuration; fix these app settings (environment or local.settings.json Values):\n"
            + "\n".join(lines)
        ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
