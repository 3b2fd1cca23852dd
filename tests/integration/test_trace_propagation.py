"""One trace and one correlation id span HTTP -> outbox -> relay -> bus -> consumer."""

from __future__ import annotations

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.bus.events import PlatformPing
from shared.bus.functions_binding import message_scope
from shared.bus.outbox import add_to_outbox
from shared.bus.postgres_transport import PostgresTransport
from shared.bus.relay import OutboxRelay
from shared.telemetry import tracer


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


async def test_the_consumer_span_continues_the_producers_trace_with_its_correlation_id(db, spans):
    transport = PostgresTransport(db)
    with (
        structlog.contextvars.bound_contextvars(correlation_id="corr-42"),
        tracer.start_as_current_span("POST /api/uploads") as http_span,
    ):
        async with db.transaction() as conn:
            await add_to_outbox(conn, PlatformPing(nonce="n1"))
    await OutboxRelay(db, transport).publish_pending()

    [message] = await transport.receive("platform", "health", max_messages=1)
    assert message.correlation_id == "corr-42"
    with message_scope(message) as consumer_span:
        pass
    await transport.complete(message)

    producer = http_span.get_span_context()
    consumer = consumer_span.get_span_context()
    assert consumer.trace_id == producer.trace_id
    assert consumer_span.parent is not None and consumer_span.parent.span_id == producer.span_id
    assert consumer_span.kind == trace.SpanKind.CONSUMER
