"""Platform triggers: the outbox relay (timer) and the bus round-trip probe (topic subscription)."""

import azure.functions as func
import structlog

from functions.platform.blueprint import bp
from functions.platform.handlers import SUBSCRIPTION, record_bus_ping
from shared.bus.functions_binding import message_scope, received_message
from shared.bus.relay import OutboxRelay
from shared.runtime import get_runtime

log = structlog.get_logger()


@bp.function_name("outbox_relay")
@bp.timer_trigger(schedule="%OUTBOX_RELAY_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=False)
async def outbox_relay(timer: func.TimerRequest) -> None:
    """Safety net and steady path of the outbox: publishes every committed, unpublished event."""
    runtime = await get_runtime()
    sent = await OutboxRelay(runtime.db, runtime.bus).publish_pending()
    if sent:
        log.info("outbox relayed", messages=sent, past_due=timer.past_due)


@bp.function_name("platform_ping")
@bp.service_bus_topic_trigger(
    arg_name="msg", connection="ServiceBusConnection", topic_name="platform", subscription_name=SUBSCRIPTION
)
async def platform_ping(msg: func.ServiceBusMessage) -> None:
    message = received_message(msg, "platform", SUBSCRIPTION)
    with message_scope(message):
        runtime = await get_runtime()
        handled = await record_bus_ping(runtime.db, message)
        log.info("bus ping handled" if handled else "bus ping redelivered; ignored")
