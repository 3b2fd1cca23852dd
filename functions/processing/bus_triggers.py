"""Processing's trigger: the `processing` subscription of the `images` topic (image.uploaded)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import azure.functions as func
import structlog

from functions.processing.batching import BatchingAnalyzer
from functions.processing.blueprint import bp
from functions.processing.handlers import SUBSCRIPTION, process_uploaded_image
from functions.processing.withdrawal import WITHDRAWING_SUBJECTS, withdraw_renditions
from functions.processing.work import ProcessingOptions
from shared.bus.functions_binding import message_scope, received_message
from shared.bus.topology import topic
from shared.config import get_settings
from shared.cpu import available_cpus
from shared.ml import get_image_analyzer
from shared.runtime import get_runtime

log = structlog.get_logger()


@cache
def _analyzer() -> BatchingAnalyzer:
    """One per worker process: the models load once, and concurrent messages share inference batches."""
    return BatchingAnalyzer(get_image_analyzer(), max_batch=get_settings().PROCESSING_ML_BATCH)


def _threads() -> int:
    return get_settings().PROCESSING_IMAGE_THREADS or available_cpus()


@cache
def _image_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="imaging")


@cache
def _admission() -> asyncio.Semaphore:
    # Two originals per decoding thread: one being decoded, the next one downloading.
    return asyncio.Semaphore(2 * _threads())


@bp.function_name("process_uploaded_image")
@bp.service_bus_topic_trigger(
    arg_name="msg", connection="ServiceBusConnection", topic_name="images", subscription_name=SUBSCRIPTION
)
async def process_uploaded(msg: func.ServiceBusMessage) -> None:
    message = received_message(msg, "images", SUBSCRIPTION)
    with message_scope(message):
        runtime = await get_runtime()
        if message.subject in WITHDRAWING_SUBJECTS:
            await withdraw_renditions(message, db=runtime.db, storage=runtime.storage, subscription=SUBSCRIPTION)
            return
        outcome = await process_uploaded_image(
            message,
            db=runtime.db,
            storage=runtime.storage,
            analyzer=_analyzer(),
            options=ProcessingOptions.from_settings(runtime.settings),
            max_deliveries=runtime.settings.BUS_MAX_DELIVERY_COUNT
            or topic("images").subscription(SUBSCRIPTION).max_delivery_count,
            executor=_image_threads(),
            admission=_admission(),
        )
        log.info("image.uploaded handled", image_id=outcome.image_id, status=outcome.status)
