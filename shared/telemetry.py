"""Structured logs (structlog, JSON) and OpenTelemetry tracing.

Every log line carries the correlation id bound in contextvars by the HTTP
edge and the bus consumer. Traces span HTTP -> outbox -> bus -> handler: the
W3C `traceparent` travels in each message's application properties, also under
`Diagnostic-Id` (the property Service Bus SDKs and Azure Monitor read), so a
message from another producer joins our trace and ours join theirs. The outbox
relay opens a PRODUCER span per message, so a trace reads: HTTP (SERVER) ->
publish (PRODUCER) -> handler (CONSUMER) -> publish -> handler ...

Export: APPLICATIONINSIGHTS_CONNECTION_STRING sends to Azure Monitor; locally
OTEL_TRACES_EXPORTER=console prints spans, =otlp sends them to
OTEL_EXPORTER_OTLP_ENDPOINT (a collector, Jaeger or the Aspire dashboard).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject

from shared.config import Settings

_configured = False
tracer = trace.get_tracer("stock-marketplace")


def configure_telemetry(
    settings: Settings, *, service: str = "stock-marketplace", own_log_handler: bool = False
) -> None:
    """Idempotent: the Functions worker may import the app more than once.

    In Azure the worker owns the root logger and ships its records to the host, so our lines go
    through stdlib logging as JSON strings. devhost (`own_log_handler=True`) installs a handler
    that renders every record, ours and the SDKs', as one JSON line on stdout.
    """
    global _configured
    if _configured:
        return
    _configured = True
    level = getattr(logging, settings.LOG_LEVEL)
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "azure.servicebus", "azure.identity", "uvicorn"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_trace_ids,
    ]
    if own_log_handler:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(),
                ],
            )
        )
        root = logging.getLogger()
        root.handlers = [handler]
        root.setLevel(level)
        final = structlog.stdlib.ProcessorFormatter.wrap_for_formatter
    else:
        logging.getLogger().setLevel(level)
        final = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), structlog.processors.format_exc_info, final],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    _configure_tracing(settings, service)


def _configure_tracing(settings: Settings, service: str) -> None:
    if settings.APPLICATIONINSIGHTS_CONNECTION_STRING:
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(
            connection_string=settings.APPLICATIONINSIGHTS_CONNECTION_STRING,
            resource_attributes={"service.name": service},
        )
        return
    processors = span_processors(settings)
    if not processors:
        # Spans would go nowhere: no provider, so the HTTP edge opens none (tracing_enabled) and the rest
        # get OpenTelemetry's no-op spans. Correlation ids still join the hops in the logs.
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)


def tracing_enabled() -> bool:
    """Whether spans are recorded: a tracer provider is installed (an exporter is configured, or a test's)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def span_processors(settings: Settings) -> list[Any]:
    """The local exporters settings ask for: console (printed as each span ends), OTLP (batched)."""
    exporter = settings.OTEL_TRACES_EXPORTER
    if settings.OTEL_CONSOLE_EXPORT and exporter == "none":
        exporter = "console"
    if exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

        return [SimpleSpanProcessor(ConsoleSpanExporter())]
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT / _HEADERS itself (default http://localhost:4318).
        return [BatchSpanProcessor(OTLPSpanExporter())]
    return []


def _add_trace_ids(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict["trace_id"] = format(ctx.trace_id, "032x")
        event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict


# The application property Azure's Service Bus SDKs put the W3C traceparent in.
DIAGNOSTIC_ID = "Diagnostic-Id"
TRACE_PROPERTIES = ("traceparent", "tracestate", DIAGNOSTIC_ID)


def trace_headers(context: otel_context.Context | None = None) -> dict[str, str]:
    """`traceparent`, `tracestate` and `Diagnostic-Id` of a context (default: the active span's)."""
    carrier: dict[str, str] = {}
    inject(carrier, context=context)
    if "traceparent" in carrier:
        carrier[DIAGNOSTIC_ID] = carrier["traceparent"]
    return carrier


def current_trace_headers() -> dict[str, str]:
    """The active span's trace headers, to store with an outgoing message."""
    return trace_headers()


def context_from(properties: Mapping[str, Any] | None) -> otel_context.Context:
    """The trace context a message carried, so the consumer's span joins the producer's trace."""
    props = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in (properties or {}).items()}
    carrier = {k: props[k] for k in ("traceparent", "tracestate") if k in props}
    if "traceparent" not in carrier and DIAGNOSTIC_ID in props:
        carrier["traceparent"] = props[DIAGNOSTIC_ID]  # a message from a Service Bus SDK producer
    return extract(carrier)


def without_trace_headers(properties: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if k not in TRACE_PROPERTIES}
