"""Azure Functions entry point: registers one Blueprint per service, nothing else."""

import azure.functions as func

from functions import checkout, ingestion, moderation, payouts, platform, processing, search_api, search_sync

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

for service in (platform, ingestion, processing, moderation, search_sync, search_api, checkout, payouts):
    app.register_functions(service.bp)
