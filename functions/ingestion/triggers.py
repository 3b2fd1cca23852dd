"""Ingestion's non-HTTP triggers: new blobs in `incoming` (through Event Grid) and the catalogue subscription."""

from datetime import UTC, datetime

import azure.functions as func
import structlog
from opentelemetry import trace

from functions.ingestion.blueprint import bp
from functions.ingestion.catalogue import SUBSCRIPTION, apply_image_event
from functions.ingestion.ingest import held_blob_info, ingest_blob, quarantine_stuck_uploads
from functions.ingestion.policy import IngestionPolicy
from functions.ingestion.quotas import forget_old_usage
from functions.ingestion.uploads import STALE_TICKET_GRACE, forget_stale_tickets
from shared.bus.functions_binding import message_scope, received_message
from shared.runtime import get_runtime
from shared.storage.port import INCOMING
from shared.telemetry import tracer

log = structlog.get_logger()


# infra/main.bicep's blobTriggerFunctionName names this function in the Event Grid subscription.
@bp.function_name("ingest_incoming_blob")
@bp.blob_trigger(
    arg_name="blob", path=f"{INCOMING}/{{name}}", connection="AzureWebJobsStorage", source=func.BlobSource.EVENT_GRID
)
async def ingest_incoming_blob(blob: func.InputStream) -> None:
    # The binding already holds the bytes (the host read them), so the handler need not download them again.
    name = (blob.name or "").removeprefix(f"{INCOMING}/")
    # image_id and correlation_id are bound by the handler once it knows them; binding them here first
    # makes sure they are unbound again when this invocation ends.
    with (
        structlog.contextvars.bound_contextvars(blob=name, image_id=None, correlation_id=None),
        tracer.start_as_current_span(
            "incoming blob", kind=trace.SpanKind.CONSUMER, attributes={"blob.name": f"{INCOMING}/{name}"}
        ),
    ):
        runtime = await get_runtime()
        policy = IngestionPolicy.from_settings(runtime.settings)
        data = blob.read()
        held = held_blob_info(name, blob.blob_properties, metadata=blob.metadata)
        result = await ingest_blob(runtime.db, runtime.storage, policy, name, data=data, held=held)
        log.info("ingestion.blob_handled", outcome=result.outcome, reason_code=result.reason_code)


@bp.function_name("ingestion_catalogue")
@bp.service_bus_topic_trigger(
    arg_name="msg", connection="ServiceBusConnection", topic_name="images", subscription_name=SUBSCRIPTION
)
async def ingestion_catalogue(msg: func.ServiceBusMessage) -> None:
    message = received_message(msg, "images", SUBSCRIPTION)
    with message_scope(message):
        runtime = await get_runtime()
        changed = await apply_image_event(runtime.db, message)
        log.info("ingestion.catalogue_event", changed=changed)


@bp.function_name("forget_stale_upload_tickets")
@bp.timer_trigger(schedule="0 */15 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def forget_stale_upload_tickets(timer: func.TimerRequest) -> None:
    runtime = await get_runtime()
    stuck = await quarantine_stuck_uploads(runtime.db, runtime.storage, older_than=STALE_TICKET_GRACE)
    if stuck:
        log.warning("ingestion.stuck_uploads_quarantined", files=stuck)
    await forget_old_usage(runtime.db, now=datetime.now(UTC))
    forgotten = await forget_stale_tickets(runtime.db)
    if forgotten:
        log.info("ingestion.stale_tickets_forgotten", tickets=forgotten)
