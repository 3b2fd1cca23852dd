"""function_app.py indexes as Azure would index it: through the Python worker's own function indexer.

The worker package (azure-functions-runtime) declares Python >= 3.13 but is pure Python; devhost/setup.sh
fetches its wheel into var/wheels, and this test puts it on sys.path. The gRPC protobuf classes the
worker normally receives from the host are replaced by plain records with the same enum values.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest

from shared.config import PROJECT_ROOT

WHEEL_DIR = PROJECT_ROOT / "var" / "wheels" / "azure-functions-runtime"


class _Record(SimpleNamespace):
    pass


class _BindingInfo(_Record):
    # Values of the host's FunctionRpc.proto BindingInfo enums.
    in_ = 0
    out = 1
    inout = 2
    undefined = 0
    string = 1
    binary = 2
    stream = 3


_protos = SimpleNamespace(
    BindingInfo=_BindingInfo,
    RpcFunctionMetadata=_Record,
    RpcRetryOptions=type(
        "RpcRetryOptions", (_Record,), {"RetryStrategy": SimpleNamespace(exponential_backoff=0, fixed_delay=1)}
    ),
)


@pytest.fixture(scope="module")
def indexed():
    assert (WHEEL_DIR / "azure_functions_runtime").is_dir(), "run devhost/setup.sh: the worker wheel is missing"
    sys.path.insert(0, str(WHEEL_DIR))
    sys.path.insert(0, str(PROJECT_ROOT))
    try:
        from azure_functions_runtime import loader
        from azure_functions_runtime.bindings.meta import load_binding_registry
        from azure_functions_runtime.functions import Registry

        load_binding_registry()  # what the worker does on its init request

        import function_app

        function_app.app.functions_bindings = {}  # devhost may have indexed it already in this process

        functions = loader.index_function_app(str(PROJECT_ROOT / "function_app.py"))
        metadata, _ = loader.process_indexed_function(_protos, Registry(), functions, str(PROJECT_ROOT))
        yield functions, metadata
    finally:
        sys.path.remove(str(WHEEL_DIR))


def test_every_function_passes_the_workers_binding_validation(indexed):
    functions, metadata = indexed
    assert len(metadata) == len(functions) > 0
    names = [m.name for m in metadata]
    assert len(names) == len(set(names)), "function names must be unique across blueprints"


def test_the_platform_functions_are_indexed_with_their_triggers(indexed):
    _, metadata = indexed
    by_name = {m.name: m for m in metadata}
    triggers = {
        name: next(b.type for b in m.bindings.values() if b.type.endswith("Trigger")) for name, m in by_name.items()
    }
    assert triggers["health"] == "httpTrigger"
    assert triggers["me"] == "httpTrigger"
    assert triggers["platform_ping"] == "serviceBusTrigger"
    assert triggers["outbox_relay"] == "timerTrigger"


def test_http_functions_use_anonymous_auth_level_because_the_app_checks_tokens(indexed):
    _, metadata = indexed
    for m in metadata:
        for raw in m.raw_bindings:  # the JSON the host receives
            binding = json.loads(raw)
            if binding["type"] == "httpTrigger":
                assert binding["authLevel"].lower() == "anonymous", m.name


def test_topic_triggers_name_subscriptions_declared_in_the_topology(indexed):
    from shared.bus.topology import topic

    functions, _ = indexed
    for fn in functions:
        data = fn.get_trigger().get_dict_repr()
        if data["type"] == "serviceBusTrigger":
            topic(data["topicName"]).subscription(data["subscriptionName"])  # raises if undeclared
