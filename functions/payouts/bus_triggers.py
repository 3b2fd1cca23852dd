"""Payouts' non-HTTP triggers: earnings from the orders topic, one transfer per approved payout, the monthly batch."""

from datetime import UTC, datetime, timedelta

import azure.functions as func
import structlog

from functions.payouts.batches import create_batch, previous_period
from functions.payouts.blueprint import bp
from functions.payouts.earnings import SUBSCRIPTION, handle_orders_message
from functions.payouts.transfers import SUBSCRIPTION as TRANSFERS
from functions.payouts.transfers import send_payout
from shared.bus.events import PayoutTransferRequested
from shared.bus.functions_binding import message_scope, received_message
from shared.payments import get_payout_gateway
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


@bp.function_name("payouts_transfer")
@bp.service_bus_topic_trigger(
    arg_name="msg", connection="ServiceBusConnection", topic_name="payouts", subscription_name=TRANSFERS
)
async def payouts_transfer(msg: func.ServiceBusMessage) -> None:
    """One approved payout: debit, transfer (idempotency key), settle. An outage raises: the bus retries."""
    message = received_message(msg, "payouts", TRANSFERS)
    with message_scope(message):
        runtime = await get_runtime()
        request = PayoutTransferRequested.model_validate(message.body)
        outcome = await send_payout(
            runtime.db, get_payout_gateway(runtime.settings), request.payout_id, datetime.now(UTC)
        )
        log.info("payouts.transfer_handled", outcome=outcome)


@bp.function_name("payouts_monthly_batch")
@bp.timer_trigger(schedule="0 0 2 1 * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def payouts_monthly_batch(timer: func.TimerRequest) -> None:
    """1st of the month, 02:00 UTC: the draft batch of last month for the admin to review."""
    runtime = await get_runtime()
    now = datetime.now(UTC)
    batch, created = await create_batch(
        runtime.db,
        period=previous_period(now),
        actor="payouts-timer",
        now=now,
        default_threshold_minor=runtime.settings.PAYOUT_DEFAULT_THRESHOLD_MINOR,
    )
    log.info("payouts.monthly_batch", batch_id=str(batch["id"]), created=created, period=batch["period"])
