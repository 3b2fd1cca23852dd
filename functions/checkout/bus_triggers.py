"""Checkout's non-HTTP triggers: the images-topic subscription (catalogue and prices) and housekeeping."""

import azure.functions as func
import structlog

from functions.checkout.blueprint import bp
from functions.checkout.catalogue import SUBSCRIPTION, apply_catalogue_event
from functions.checkout.reconcile import reconcile_stripe_events
from functions.checkout.stripe_events import forget_old_events
from shared.bus.functions_binding import message_scope, received_message
from shared.payments import get_payment_gateway
from shared.runtime import get_runtime

log = structlog.get_logger()


@bp.function_name("checkout_catalogue")
@bp.service_bus_topic_trigger(
    arg_name="msg", connection="ServiceBusConnection", topic_name="images", subscription_name=SUBSCRIPTION
)
async def checkout_catalogue(msg: func.ServiceBusMessage) -> None:
    message = received_message(msg, "images", SUBSCRIPTION)
    with message_scope(message):
        runtime = await get_runtime()
        handled = await apply_catalogue_event(runtime.db, message)
        log.info("checkout catalogue updated" if handled else "checkout catalogue event redelivered; ignored")


@bp.function_name("checkout_housekeeping")
@bp.timer_trigger(schedule="0 30 3 * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def checkout_housekeeping(timer: func.TimerRequest) -> None:
    """Daily: forget Stripe event ids older than any redelivery."""
    runtime = await get_runtime()
    forgotten = await forget_old_events(runtime.db)
    if forgotten:
        log.info("checkout forgot old stripe events", events=forgotten)


@bp.function_name("checkout_reconcile_stripe")
@bp.timer_trigger(schedule="0 7 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def checkout_reconcile_stripe(timer: func.TimerRequest) -> None:
    """Hourly: apply any Stripe event of the last days that the webhook never delivered."""
    runtime = await get_runtime()
    result = await reconcile_stripe_events(runtime.db, get_payment_gateway(runtime.settings), runtime.settings)
    log.info("checkout.stripe_reconciled", listed=result.listed, applied=result.applied)
