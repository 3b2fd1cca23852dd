"""infra/ read the way checkov reads it (pycep-parser, no Azure and no Bicep compiler): the Service Bus
that Bicep would deploy equals shared/bus/topology.py, every setting the app requires in Azure is set by
the Bicep app settings, and no secret value sits in them.

The Service Bus check follows the templates the way ARM would: main.bicep hands `loadJsonContent(...)` to
servicebus.bicep, which loops topics over it and hands each topic's subscriptions to
servicebus-subscriptions.bicep, whose loops name the subscriptions and their `$Default` rules. A small
evaluator walks those loops with the JSON, so a hard-coded name, a different loop source or a filter not
taken from the topology shows up as a difference.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from shared.bus import topology
from shared.config import ConfigError, load_settings

INFRA = Path(__file__).resolve().parents[2] / "infra"
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")


@pytest.fixture(scope="module")
def bicep() -> dict[str, dict[str, Any]]:
    parser = BicepParser()
    return {path.name: parser.parse(text=path.read_text(encoding="utf-8")) for path in INFRA.rglob("*.bicep")}


# --- a small evaluator for the expressions these templates use ---------------------------------------


def _path(text: str, scope: dict[str, Any]) -> Any:
    """`a.b[i].c` against the scope."""
    value: Any = None
    for n, part in enumerate(re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\[[^\]]+\]", text)):
        if n == 0:
            value = scope[part]
        elif part.startswith("["):
            value = value[_evaluate(part[1:-1], scope)]
        else:
            value = value[part]
    return value


def _evaluate(node: Any, scope: dict[str, Any]) -> Any:
    if isinstance(node, str):
        if _INTERPOLATION.search(node):
            return _INTERPOLATION.sub(lambda m: str(_path(m.group(1), scope)), node)
        return scope[node] if node in scope else node  # a name in scope, else a literal
    if isinstance(node, list):
        return [_evaluate(item, scope) for item in node]
    if not isinstance(node, dict):
        return node
    if "operator" in node:
        operator = node["operator"]
        operands = operator["operands"]
        if operator["type"] == "property_accessor":
            return _evaluate(operands["operand_1"], scope)[_name(operands["operand_2"], scope)]
        if operator["type"] == "index_accessor":
            return _evaluate(operands["operand_1"], scope)[_evaluate(operands["operand_2"], scope)]
        raise NotImplementedError(operator["type"])
    if "function" in node:
        function = node["function"]
        if function["type"] == "load_json_content":
            return json.loads((INFRA / function["parameters"]["file_path"]).read_text(encoding="utf-8"))
        raise NotImplementedError(function["type"])
    return {key: _evaluate(value, scope) for key, value in node.items()}


def _name(node: Any, scope: dict[str, Any]) -> Any:
    # The right side of `a.b` is a member name, even when a variable of that name is in scope.
    return node if isinstance(node, str) else _evaluate(node, scope)


def _body(block: dict[str, Any]) -> dict[str, Any]:
    """A resource or module's body: looped and conditional blocks wrap it once more."""
    config = block["config"]
    return config["config"] if "loop_type" in config or "condition" in config else config


def _loop(block: dict[str, Any], scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Every copy a (possibly looped) resource or module block produces, evaluated."""
    loop = block["config"].get("loop_type")
    body = _body(block)
    if loop is None:
        return [_evaluate(body, scope)]
    detail = loop["detail"]
    copies = []
    for index, item in enumerate(scope[detail["array_name"]]):
        inner = {**scope, detail["item_name"]: item}
        if detail.get("index_name"):
            inner[detail["index_name"]] = index
        copies.append(_evaluate(body, inner))
    return copies


def deployed_service_bus(bicep: dict[str, dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(topic, subscription) -> what ARM would create for it, following main -> servicebus -> subscriptions."""
    main_module = bicep["main.bicep"]["modules"]["serviceBus"]
    assert main_module["detail"]["path"] == "servicebus.bicep"
    topology_param = _evaluate(_body(main_module)["params"]["topology"], {})

    servicebus = bicep["servicebus.bicep"]
    scope: dict[str, Any] = {"topology": topology_param, "namespace": {"name": "sb-test"}}
    assert servicebus["resources"]["topics"]["config"]["loop_type"]["detail"]["array_name"] == "topology"
    scope["topics"] = _loop(servicebus["resources"]["topics"], scope)

    deployed: dict[tuple[str, str], dict[str, Any]] = {}
    subscriptions_module = servicebus["modules"]["topicSubscriptions"]
    assert subscriptions_module["detail"]["path"] == "servicebus-subscriptions.bicep"
    per_topic = bicep["servicebus-subscriptions.bicep"]["resources"]
    for module_copy in _loop(subscriptions_module, scope):
        params = module_copy["params"]
        inner = dict(params)
        inner["subscription"] = _loop(per_topic["subscription"], inner)
        rules = _loop(per_topic["filter"], inner)
        for created, rule in zip(inner["subscription"], rules, strict=True):
            assert rule["parent"] is created and rule["name"] == "$Default"
            deployed[(params["topicName"], created["name"])] = {
                "filter": rule["properties"]["sqlFilter"]["sqlExpression"],
                "maxDeliveryCount": created["properties"]["maxDeliveryCount"],
                "lockDuration": created["properties"]["lockDuration"],
            }
    return deployed


# --- Service Bus ----------------------------------------------------------------------------------


def test_every_template_parses_as_checkov_reads_it(bicep):
    assert {"main.bicep", "servicebus.bicep", "servicebus-subscriptions.bicep", "keyvault.bicep"} <= set(bicep)
    assert "frontdoor.bicep" in bicep and "search.bicep" in bicep


def test_the_service_bus_bicep_deploys_is_the_python_topology(bicep):
    expected = {
        (t.name, s.name): {
            "filter": s.sql_filter,
            "maxDeliveryCount": s.max_delivery_count,
            "lockDuration": f"PT{s.lock_duration_seconds}S",
        }
        for t in topology.TOPICS.values()
        for s in t.subscriptions
    }
    assert deployed_service_bus(bicep) == expected


def test_topics_get_duplicate_detection_from_the_topology(bicep):
    topics = _loop(
        bicep["servicebus.bicep"]["resources"]["topics"],
        {"topology": json.loads(topology.as_json()), "namespace": {"name": "sb-test"}},
    )
    assert {t["name"]: t["properties"]["duplicateDetectionHistoryTimeWindow"] for t in topics} == {
        t.name: f"PT{t.duplicate_detection_minutes}M" for t in topology.TOPICS.values()
    }
    assert all(t["properties"]["requiresDuplicateDetection"] is True for t in topics)


# --- app settings ---------------------------------------------------------------------------------

# What the Bicep expressions resolve to at deployment, for the settings whose value is an expression.
# A new expression-valued setting needs an entry here, so the test below keeps checking every setting.
_RESOLVED = {
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
    "AzureWebJobsStorage__accountName": "stabc",
    "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-000000000001",
    "STORAGE_ACCOUNT_URL": "https://stabc.blob.core.windows.net/",
    "ServiceBusConnection__fullyQualifiedNamespace": "sb-abc.servicebus.windows.net",
    "ServiceBusConnection__clientId": "00000000-0000-0000-0000-000000000001",
    "DATABASE_URL": "postgresql://id-abc@psql-abc.postgres.database.azure.com:5432/marketplace?sslmode=require",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000002",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "ClientId=00000000-0000-0000-0000-000000000001;Authorization=AAD",
    "AUTH_ISSUER": "https://tenant.ciamlogin.com/00000000-0000-0000-0000-000000000003/v2.0",
    "AUTH_JWKS_URL": "https://tenant.ciamlogin.com/00000000-0000-0000-0000-000000000003/discovery/v2.0/keys",
    "AUTH_AUDIENCE": "api://stock-marketplace",
    # Key Vault references resolve to the secrets' values (the host does it before the app starts).
    "STRIPE_SECRET_KEY": "sk_live_from_key_vault",
    "STRIPE_WEBHOOK_SECRET": "whsec_from_key_vault",
    "STRIPE_CONNECT_WEBHOOK_SECRET": "whsec_connect_from_key_vault",
    "PAYOUT_TIN_KEY_ID": "https://kv-abc.vault.azure.net/keys/payout-tin-kek/0123456789abcdef0123456789abcdef",
    "AZURE_SEARCH_ENDPOINT": "https://srch-abc.search.windows.net",
    "PUBLIC_BASE_URL": "https://ep-abc.azurefd.net",
    "STORAGE_PUBLIC_BASE_URL": "https://ep-abc.azurefd.net",
    "PAYOUT_ONBOARDING_RETURN_URL": "https://ep-abc.azurefd.net/api/contributor/payout-account",
    "DATABASE_POOL_MAX": "4",  # string(databasePoolMax), its default
}
_KEY_VAULT_REFERENCE = re.compile(r"@Microsoft\.KeyVault\(SecretUri=\$\{keyVault\.outputs\.\w+\}\)")


def _app_settings(bicep) -> dict[str, Any]:
    return _body(bicep["main.bicep"]["resources"]["appSettings"])["properties"]


def _as_deployed(settings: dict[str, Any], symbols: set[str]) -> dict[str, str]:
    deployed = {}
    for name, value in settings.items():
        # pycep gives a literal and a bare reference (a param, var, resource) both as a string.
        literal = isinstance(value, str) and "${" not in value and value not in symbols
        if literal:
            deployed[name] = value
        else:
            assert name in _RESOLVED, f"app setting {name} is an expression: add what it resolves to in _RESOLVED"
            deployed[name] = _RESOLVED[name]
    return deployed


def test_the_bicep_app_settings_satisfy_every_setting_the_app_requires_in_azure(bicep, monkeypatch, tmp_path):
    main = bicep["main.bicep"]
    symbols = {*main["parameters"], *main["variables"], *main["resources"], *main["modules"]}
    deployed = _as_deployed(_app_settings(bicep), symbols)
    assert deployed["APP_ENV"] == "azure"
    for name, value in deployed.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    settings = load_settings()  # raises, naming the setting, if Azure needs one Bicep does not set
    assert settings.APP_ENV == "azure" and settings.DATABASE_AUTH == "entra"
    assert settings.BUS_TRANSPORT == "servicebus" and settings.SEARCH_BACKEND == "azure"

    # And each of those settings is needed: without it the app refuses to start in Azure.
    for required in ("DATABASE_URL", "DATABASE_AUTH", "AUTH_JWKS_URL", "STRIPE_WEBHOOK_SECRET", "PAYOUT_TIN_KEY_ID"):
        monkeypatch.delenv(required)
        with pytest.raises(ConfigError):
            load_settings()
        monkeypatch.setenv(required, deployed[required])


def test_no_secret_value_and_no_database_password_sits_in_app_settings(bicep):
    settings = _app_settings(bicep)
    for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_CONNECT_WEBHOOK_SECRET"):
        assert _KEY_VAULT_REFERENCE.fullmatch(settings[name]), f"{name} must be a Key Vault reference"
    assert settings["DATABASE_AUTH"] == "entra"
    assert "@" in settings["DATABASE_URL"] and ":" not in settings["DATABASE_URL"].split("@")[0].removeprefix(
        "postgresql://"
    ), "DATABASE_URL must name the identity without a password"
    parameters = bicep["main.bicep"]["parameters"]
    assert not [p for p in parameters if "password" in p.lower()]
    postgres = _body(bicep["main.bicep"]["resources"]["postgres"])["properties"]
    assert postgres["authConfig"]["passwordAuth"] == "Disabled"
    assert "administratorLoginPassword" not in postgres


def test_the_secrets_go_into_key_vault_and_the_app_may_only_read_them(bicep):
    vault = bicep["keyvault.bicep"]["resources"]
    properties = _body(vault["vault"])["properties"]
    assert properties["enableRbacAuthorization"] is True and properties["enablePurgeProtection"] is True
    secret_names = {_evaluate(s["name"], {}) for s in bicep["keyvault.bicep"]["variables"]["secrets"]["value"]}
    assert secret_names == {"stripe-secret-key", "stripe-webhook-secret", "stripe-connect-webhook-secret"}
    roles = bicep["keyvault.bicep"]["variables"]
    # Secrets User (read secrets) and Crypto User (wrap/unwrap), nothing that could write or delete.
    assert roles["keyVaultSecretsUser"]["value"] == "4633458b-17de-408a-b874-0445c86b69e6"
    assert roles["keyVaultCryptoUser"]["value"] == "12338af0-0e69-4776-bea7-57ae8d297424"
    app = _body(bicep["main.bicep"]["resources"]["functionApp"])["properties"]
    assert _evaluate(app["keyVaultReferenceIdentity"], {"identity": {"id": "ID"}}) == "ID"


def test_every_diagnostic_setting_goes_to_the_log_analytics_workspace(bicep):
    found = []
    for file, tree in bicep.items():
        for resource in tree["resources"].values():
            if resource["type"] == "Microsoft.Insights/diagnosticSettings":
                found.append(
                    (
                        file,
                        resource["config"]["scope"]
                        if "scope" in resource["config"]
                        else resource["config"]["config"]["scope"],
                    )
                )
    scopes = {scope if isinstance(scope, str) else json.dumps(scope) for _, scope in found}
    for expected in ("functionApp", "postgres", "blobService", "storageEvents", "vault", "namespace", "profile"):
        assert expected in scopes, f"no diagnostic setting for {expected}"


# --- azd ------------------------------------------------------------------------------------------


def test_azure_yaml_deploys_each_service_to_the_resource_bicep_tags_for_it(bicep):
    import yaml

    project = yaml.safe_load((INFRA.parent / "azure.yaml").read_text(encoding="utf-8"))
    assert (INFRA.parent / project["infra"]["path"] / f"{project['infra']['module']}.bicep").exists()
    tagged = {}
    for resource in bicep["main.bicep"]["resources"].values():
        tags = _body(resource).get("tags")
        if isinstance(tags, dict) and tags.get("function", {}).get("type") == "union":  # union(tags, {...})
            for extra in tags["function"]["parameters"].values():
                if isinstance(extra, dict):
                    names = {k.strip("'"): v for k, v in extra.items()}
                    if "azd-service-name" in names:
                        tagged[names["azd-service-name"]] = resource["type"]
    hosts = {"function": "Microsoft.Web/sites", "staticwebapp": "Microsoft.Web/staticSites"}
    for name, service in project["services"].items():
        assert (INFRA.parent / service["project"]).resolve().is_relative_to(INFRA.parent)
        assert tagged.get(name) == hosts[service["host"]], (
            f"no {service['host']} resource tagged azd-service-name={name}"
        )


def test_every_required_bicep_parameter_comes_from_the_azd_environment(bicep):
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    required = {name for name, p in bicep["main.bicep"]["parameters"].items() if p.get("default") is None}
    assert required <= set(parameters), f"azd would not know: {sorted(required - set(parameters))}"
    assert set(parameters) <= set(bicep["main.bicep"]["parameters"])
    for name, value in parameters.items():
        assert re.fullmatch(r"\$\{[A-Z_]+(=[^}]*)?\}", value["value"]), f"{name} should come from the azd env"
