"""One trace and one correlation id span HTTP -> outbox -> relay (publish) -> bus -> handler, hop after hop,
with the W3C traceparent in the message's application properties (and Service Bus's `Diagnostic-Id`), on the
Postgres bus and on the wire of the real azure-servicebus SDK."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.bus.events import PlatformPing
from shared.bus.functions_binding import message_scope
from shared.bus.outbox import add_to_outbox
from shared.bus.postgres_transport import PostgresTransport
from shared.bus.relay import OutboxRelay
from shared.bus.servicebus_transport import ServiceBusTransport
from shared.config import load_settings
from shared.telemetry import DIAGNOSTIC_ID, context_from, span_processors, tracer
from tests.integration.test_servicebus_transport import FakeServiceBus


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


def _chain(spans: InMemorySpanExporter, last: ReadableSpan) -> list[ReadableSpan]:
    """From `last` up through its parents, as (kind, name): the path the trace records."""
    by_id = {s.context.span_id: s for s in spans.get_finished_spans()}
    chain = [last]
    while chain[-1].parent is not None and chain[-1].parent.span_id in by_id:
        chain.append(by_id[chain[-1].parent.span_id])
    return list(reversed(chain))


async def _request_that_publishes(db, nonce: str) -> None:
    with (
        structlog.contextvars.bound_contextvars(correlation_id="corr-42"),
        tracer.start_as_current_span("POST /api/uploads", kind=trace.SpanKind.SERVER),
    ):
        async with db.transaction() as conn:
            await add_to_outbox(conn, PlatformPing(nonce=nonce))


async def test_a_request_its_publish_and_the_handler_are_one_chain_in_one_trace(db, spans):
    transport = PostgresTransport(db)
    await _request_that_publishes(db, "n1")
    await OutboxRelay(db, transport).publish_pending()

    [message] = await transport.receive("platform", "health", max_messages=1)
    assert message.correlation_id == "corr-42"
    assert message.application_properties[DIAGNOSTIC_ID] == message.application_properties["traceparent"]
    with message_scope(message) as consumer:
        pass
    await transport.complete(message)

    chain = _chain(spans, consumer)
    assert [(s.kind, s.name) for s in chain] == [
        (trace.SpanKind.SERVER, "POST /api/uploads"),
        (trace.SpanKind.PRODUCER, "platform publish"),
        (trace.SpanKind.CONSUMER, "platform/health platform.ping"),
    ]
    assert len({s.context.trace_id for s in chain}) == 1
    assert chain[1].attributes["messaging.message.id"] == message.message_id


async def test_a_handler_that_publishes_extends_the_same_trace_over_a_second_hop(db, spans):
    transport = PostgresTransport(db)
    relay = OutboxRelay(db, transport)
    await _request_that_publishes(db, "hop-1")
    await relay.publish_pending()

    [first] = await transport.receive("platform", "health", max_messages=1)
    with message_scope(first):  # the handler's own work publishes the next event
        async with db.transaction() as conn:
            await add_to_outbox(conn, PlatformPing(nonce="hop-2"))
    await transport.complete(first)
    await relay.publish_pending()

    [second] = await transport.receive("platform", "health", max_messages=1)
    assert second.correlation_id == "corr-42"  # the correlation id rides along too
    with message_scope(second) as last:
        pass
    await transport.complete(second)

    chain = _chain(spans, last)
    assert [s.kind for s in chain] == [
        trace.SpanKind.SERVER,
        trace.SpanKind.PRODUCER,
        trace.SpanKind.CONSUMER,
        trace.SpanKind.PRODUCER,
        trace.SpanKind.CONSUMER,
    ]
    assert len({s.context.trace_id for s in chain}) == 1


# --- Service Bus: the SDK's wire format ------------------------------------------------------


@pytest.fixture
async def fake_bus():
    fake = FakeServiceBus(max_batch_size=64 * 1024)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
    assert not fake.errors, f"the fake broker failed: {fake.errors!r}"


async def test_over_service_bus_the_trace_rides_in_application_properties(db, spans, fake_bus):
    transport = ServiceBusTransport(connection_string=fake_bus.connection_string(), min_receive_wait_seconds=0.3)
    try:
        await _request_that_publishes(db, "sb-1")
        await OutboxRelay(db, transport).publish_pending()

        [sent] = [m for s in fake_bus.sent if s.address == "platform" for m in s.messages]
        wire = {k.decode(): (v.decode() if isinstance(v, bytes) else v) for k, v in sent.application_properties.items()}
        publish = next(s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.PRODUCER)
        assert wire["traceparent"] == wire[DIAGNOSTIC_ID]
        assert wire["traceparent"].startswith(f"00-{publish.context.trace_id:032x}-{publish.context.span_id:016x}-")

        # The broker hands the same message to the subscription; the consumer continues the trace.
        fake_bus.enqueue(
            "platform",
            "health",
            body=b"".join(sent.data),
            message_id=sent.properties.message_id.decode(),
            subject=sent.properties.subject.decode(),
            correlation_id=sent.properties.correlation_id.decode(),
            application_properties=dict(sent.application_properties),
        )
        [received] = await transport.receive("platform", "health", max_messages=1, max_wait_seconds=2)
        with message_scope(received) as consumer:
            pass
        await transport.complete(received)
    finally:
        await asyncio.wait_for(transport.close(), 10)

    chain = _chain(spans, consumer)
    assert [s.kind for s in chain] == [trace.SpanKind.SERVER, trace.SpanKind.PRODUCER, trace.SpanKind.CONSUMER]
    assert received.correlation_id == "corr-42"


def test_a_message_from_a_service_bus_sdk_producer_joins_its_trace_by_diagnostic_id():
    diagnostic_id = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    parent = trace.get_current_span(context_from({DIAGNOSTIC_ID: diagnostic_id.encode()})).get_span_context()
    assert (parent.trace_id, parent.span_id) == (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331)


def test_spans_can_be_printed_or_sent_to_an_otlp_collector_locally(tmp_path, monkeypatch):
    assert span_processors(load_settings(VAR_DIR=tmp_path)) == []
    [console] = span_processors(load_settings(VAR_DIR=tmp_path, OTEL_TRACES_EXPORTER="console"))
    assert type(console.span_exporter).__name__ == "ConsoleSpanExporter"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.local:4318")
    [otlp] = span_processors(load_settings(VAR_DIR=tmp_path, OTEL_TRACES_EXPORTER="otlp"))
    try:
        assert isinstance(otlp, BatchSpanProcessor)
        assert type(otlp._batch_processor._exporter).__name__ == "OTLPSpanExporter"
        assert otlp._batch_processor._exporter._endpoint == "http://collector.local:4318/v1/traces"
    finally:
        otlp.shutdown()
