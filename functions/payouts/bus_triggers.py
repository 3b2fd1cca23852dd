"""Payouts' non-HTTP triggers: earnings from the orders topic, one transfer per approved payout, the monthly batch."""

from datetime import timedelta

import azure.functions as func
import structlog

from functions.payouts.blueprint import bp
from functions.payouts.earnings import SUBSCRIPTION, handle_orders_message
from shared.bus.functions_binding import message_scope, received_message
from shared.runtime import get_runtime

log = structlog.get_logger()


@bp.function_name("payouts_earnings")
@bp.service_bus_topic_trigger(
    arg_name="msg", connection="ServiceBusConnection", topic_name="orders", subscription_name=SUBSCRIPTION
)
async def payouts_earnings(msg: func.ServiceBusMessage) -> None:
    message = received_message(msg, "orders", SUBSCRIPTION)
    with message_scope(message):
        runtime = await get_runtime()
        hold = timedelta(days=runtime.settings.PAYOUT_HOLD_DAYS)
        outcome = await handle_orders_message(runtime.db, message, hold)
        log.info("payouts.earnings_applied", outcome=outcome)
