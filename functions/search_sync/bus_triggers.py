"""search_sync triggers: the `search-sync` subscriptions of the images and orders topics."""

import azure.functions as func
import structlog

from functions.search_sync.blueprint import bp
from functions.search_sync.handlers import SUBSCRIPTIONS, handle_message
from shared.bus.functions_binding import message_scope, received_message
from shared.runtime import get_runtime
from shared.search.factory import get_search_index

log = structlog.get_logger()


async def _handle(msg: func.ServiceBusMessage, topic: str) -> None:
    message = received_message(msg, topic, SUBSCRIPTIONS[topic])
    with message_scope(message):
        runtime = await get_runtime()
        applied = await handle_message(runtime.db, await get_search_index(), message)
        log.info("search_sync.handled" if applied else "search_sync.skipped")


@bp.function_name("search_sync_images")
@bp.service_bus_topic_trigger(
    arg_name="msg", connection="ServiceBusConnection", topic_name="images", subscription_name=SUBSCRIPTIONS["images"]
)
async def search_sync_images(msg: func.ServiceBusMessage) -> None:
    await _handle(msg, "images")


@bp.function_name("search_sync_orders")
@bp.service_bus_topic_trigger(
    arg_name="msg", connection="ServiceBusConnection", topic_name="orders", subscription_name=SUBSCRIPTIONS["orders"]
)
async def search_sync_orders(msg: func.ServiceBusMessage) -> None:
    await _handle(msg, "orders")


@bp.function_name("search_sync_maintain")
@bp.timer_trigger(schedule="0 41 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def search_sync_maintain(timer: func.TimerRequest) -> None:
    """Hourly: the serving index's upkeep as the catalogue grows (local backend: one HNSW graph per large category)."""
    changed = await (await get_search_index()).maintain()
    log.info("search_sync.maintained", **changed)
