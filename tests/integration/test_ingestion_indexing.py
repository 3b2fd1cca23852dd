"""Ingestion's functions are declared the way infra/ wires them (tests/integration/test_function_app_indexing.py
runs the Azure worker's own indexer over the whole app, ingestion included)."""

from __future__ import annotations

import re

import azure.functions as func

import functions.ingestion
from shared.config import PROJECT_ROOT


def _triggers() -> dict[str, dict]:
    # A fresh app with the ingestion blueprint: function_app's own app builds its functions once per process.
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(functions.ingestion.bp)
    return {fn.get_function_name(): fn.get_trigger().get_dict_repr() for fn in app.get_functions()}


def test_the_blob_trigger_listens_to_incoming_through_event_grid_under_the_name_infra_subscribes():
    bicep = (PROJECT_ROOT / "infra" / "main.bicep").read_text()
    expected = re.search(r"param blobTriggerFunctionName string = '([^']+)'", bicep).group(1)

    trigger = _triggers()[expected]

    assert trigger["type"] == "blobTrigger"
    assert trigger["path"] == "incoming/{name}"
    assert trigger["source"] == "EventGrid"
    assert trigger["connection"] == "AzureWebJobsStorage"


def test_the_catalogue_subscribes_to_the_images_topic_and_the_routes_are_http():
    triggers = _triggers()
    catalogue = triggers["ingestion_catalogue"]
    assert (catalogue["type"], catalogue["topicName"], catalogue["subscriptionName"]) == (
        "serviceBusTrigger",
        "images",
        "ingestion",
    )
    for name in ("create_upload", "list_contributor_images", "get_contributor_image"):
        assert triggers[name]["type"] == "httpTrigger"
