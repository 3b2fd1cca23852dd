"""Configuration: every setting validated at start-up, with a message that says what to fix."""

import json
import os
import re
import subprocess
import sys

import pytest

from devhost.settings_file import render_sample
from shared.config import PROJECT_ROOT, ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.upper() in {f.upper() for f in Settings.model_fields} or name in (
            "AzureWebJobsStorage",
            "ServiceBusConnection",
            "ServiceBusConnection__fullyQualifiedNamespace",
        ):
            monkeypatch.delenv(name, raising=False)


def test_defaults_describe_the_embedded_local_stack():
    settings = load_settings()
    assert settings.DATABASE_URL is None  # embedded Postgres
    assert settings.BUS_TRANSPORT == "postgres"
    assert settings.BUS_MAX_DELIVERY_COUNT is None  # the topology's value (10) applies


def test_azure_app_setting_names_are_read(monkeypatch):
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    monkeypatch.setenv(
        "ServiceBusConnection", "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v"
    )
    monkeypatch.setenv("BUS_TRANSPORT", "servicebus")
    settings = load_settings()
    assert settings.STORAGE_CONNECTION_STRING == "UseDevelopmentStorage=true"
    assert settings.SERVICEBUS_CONNECTION.startswith("Endpoint=sb://")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DATABASE_URL", "mysql://db", "DATABASE_URL: Value error, must start with postgresql://"),
        ("DATABASE_POOL_MAX", "lots", "DATABASE_POOL_MAX: Input should be a valid integer"),
        ("BUS_TRANSPORT", "kafka", "BUS_TRANSPORT: Input should be 'postgres' or 'servicebus'"),
        ("BUS_LOCK_DURATION_SECONDS", "900", "BUS_LOCK_DURATION_SECONDS: Input should be less than or equal to 300"),
        ("ServiceBusConnection", "not-a-connection-string", "must be a Service Bus connection string"),
    ],
)
def test_a_malformed_setting_is_named_with_how_to_fix_it(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert message in str(err.value)


def test_a_missing_dependent_setting_is_reported(monkeypatch):
    monkeypatch.setenv("BUS_TRANSPORT", "servicebus")
    with pytest.raises(ConfigError, match="BUS_TRANSPORT=servicebus needs SERVICEBUS_CONNECTION"):
        load_settings()
    monkeypatch.setenv("BUS_TRANSPORT", "postgres")
    monkeypatch.setenv("APP_ENV", "azure")
    with pytest.raises(ConfigError, match="DATABASE_URL is required when APP_ENV=azure"):
        load_settings()


def test_the_azure_search_backend_needs_its_endpoint(monkeypatch):
    monkeypatch.setenv("SEARCH_BACKEND", "azure")
    with pytest.raises(ConfigError, match="SEARCH_BACKEND=azure needs AZURE_SEARCH_ENDPOINT"):
        load_settings()
    monkeypatch.setenv("AZURE_SEARCH_ENDPOINT", "https://srch-x.search.windows.net")
    assert load_settings().SEARCH_BACKEND == "azure"


def test_azure_refuses_the_local_token_issuer(monkeypatch):
    monkeypatch.setenv("APP_ENV", "azure")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/market")
    with pytest.raises(ConfigError, match="AUTH_JWKS_URL is required when APP_ENV=azure"):
        load_settings()
    monkeypatch.setenv("AUTH_JWKS_URL", "https://login.example/keys")
    with pytest.raises(ConfigError, match="AUTH_ISSUER must name the real identity provider"):
        load_settings()
    monkeypatch.setenv("AUTH_ISSUER", "https://login.example/tenant/v2.0")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_real_endpoint_secret")
    monkeypatch.setenv("STRIPE_CONNECT_WEBHOOK_SECRET", "whsec_real_connect_endpoint_secret")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_real_key")
    _sign_in_without_secrets_on_disk(monkeypatch)
    assert load_settings().AUTH_JWKS_URL == "https://login.example/keys"


def _sign_in_without_secrets_on_disk(monkeypatch):
    with pytest.raises(ConfigError, match="DATABASE_AUTH must be 'entra' when APP_ENV=azure"):
        load_settings()
    monkeypatch.setenv("DATABASE_AUTH", "entra")
    with pytest.raises(ConfigError, match="DATABASE_AUTH=entra needs DATABASE_URL naming the identity and no password"):
        load_settings()
    monkeypatch.setenv("DATABASE_URL", "postgresql://id-market@db:5432/market?sslmode=require")
    with pytest.raises(ConfigError, match="PAYOUT_TIN_KEY_ID is required when APP_ENV=azure"):
        load_settings()
    monkeypatch.setenv("PAYOUT_TIN_KEY_ID", "https://kv-x.vault.azure.net/keys/payout-tin/0123456789abcdef")


def test_azure_refuses_the_stripe_standins_published_keys(monkeypatch):
    # The stand-in's webhook secret is in the repository: with it anyone could sign a completed checkout.
    monkeypatch.setenv("APP_ENV", "azure")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/market")
    monkeypatch.setenv("AUTH_JWKS_URL", "https://login.example/keys")
    monkeypatch.setenv("AUTH_ISSUER", "https://login.example/tenant/v2.0")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_real_key")
    with pytest.raises(ConfigError, match="STRIPE_WEBHOOK_SECRET must be the real endpoint's secret"):
        load_settings()
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_real_endpoint_secret")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_local_standin")
    with pytest.raises(ConfigError, match="STRIPE_SECRET_KEY must be a real Stripe key"):
        load_settings()
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_real_key")
    # The Connect endpoint's secret signs account.updated: forged, it would mark any account ready to be paid.
    with pytest.raises(ConfigError, match="STRIPE_CONNECT_WEBHOOK_SECRET must be the real Connect endpoint's secret"):
        load_settings()
    monkeypatch.setenv("STRIPE_CONNECT_WEBHOOK_SECRET", "whsec_real_connect_endpoint_secret")
    _sign_in_without_secrets_on_disk(monkeypatch)
    assert load_settings().STRIPE_WEBHOOK_SECRET == "whsec_real_endpoint_secret"


def test_devhost_refuses_to_start_with_a_bad_setting_and_says_why(tmp_path):
    env = {**os.environ, "DATABASE_POOL_MAX": "many", "VAR_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "start"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "DATABASE_POOL_MAX" in result.stderr and "valid integer" in result.stderr
    assert not (tmp_path / "pg").exists()  # nothing was started


def test_the_sample_settings_file_lists_every_setting_and_is_current():
    committed = (PROJECT_ROOT / "local.settings.sample.json").read_text()
    assert committed == render_sample(), "regenerate: python -m devhost settings-sample > local.settings.sample.json"
    values = json.loads(committed)["Values"]
    for name, field in Settings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", None) or [name]
        assert any(a in values for a in aliases), f"{name} missing from local.settings.sample.json"


def test_the_kept_browse_widths_are_the_portals_size_presets():
    """A size preset the portal offers but the counts do not keep would browse by counting every image."""
    source = (PROJECT_ROOT / "portals" / "web" / "src" / "lib" / "searchState.ts").read_text()
    presets = re.search(r"export const SIZES = \{([^}]*)\}", source)
    assert presets is not None, "SIZES moved: keep this test pointing at the portal's size presets"
    widths = sorted(int(w) for w in re.findall(r":\s*(\d+)", presets.group(1)))
    assert widths == sorted(Settings().SEARCH_COUNTED_MIN_WIDTHS)


def test_settings_stay_hashable_so_they_can_key_caches():
    """Settings key lru_caches (the portals' security headers): a list-typed setting made them unhashable."""
    assert hash(Settings()) == hash(Settings())
