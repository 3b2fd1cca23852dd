"""Moderation's subscriptions: every processed image is approved automatically or queued for a human (and a
re-analysed one gets its new tags and embedding); every other service's admin action is appended to the one
audit log."""

import azure.functions as func
import structlog

from functions.moderation.audit_trail import AUDIT_SUBSCRIPTION, append_audit_event
from functions.moderation.blueprint import bp
from functions.moderation.handlers import SUBSCRIPTION, handle_image_processed, handle_image_reanalyzed
from functions.moderation.policy import ModerationPolicy
from shared.bus.events import ImageReanalyzed
from shared.bus.functions_binding import message_scope, received_message
from shared.runtime import get_runtime

log = structlog.get_logger()


@bp.function_name("moderation_image_processed")
@bp.service_bus_topic_trigger(
    arg_name="msg", connection="ServiceBusConnection", topic_name="images", subscription_name=SUBSCRIPTION
)
async def moderation_image_processed(msg: func.ServiceBusMessage) -> None:
    message = received_message(msg, "images", SUBSCRIPTION)
    with message_scope(message):
        runtime = await get_runtime()
        if message.subject == ImageReanalyzed.subject:
            outcome = await handle_image_reanalyzed(runtime.db, message)
        else:
            outcome = await handle_image_processed(
                runtime.db, message, ModerationPolicy.from_settings(runtime.settings)
            )
        log.info("moderation.image_handled", subject=message.subject, outcome=outcome)


@bp.function_name("moderation_audit_recorded")
@bp.service_bus_topic_trigger(
    arg_name="msg", connection="ServiceBusConnection", topic_name="audit", subscription_name=AUDIT_SUBSCRIPTION
)
async def moderation_audit_recorded(msg: func.ServiceBusMessage) -> None:
    message = received_message(msg, "audit", AUDIT_SUBSCRIPTION)
    with message_scope(message):
        runtime = await get_runtime()
        outcome = await append_audit_event(runtime.db, message)
        log.info("moderation.audit_recorded_handled", outcome=outcome)
