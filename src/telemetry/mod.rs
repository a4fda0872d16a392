//! Logs, traces and metrics. Logs always go to stderr; traces and metrics
//! are exported over OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT` is
//! set (with `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`); metrics are
//! always served in Prometheus text at `/metrics`. Tokens are never
//! recorded: no span field, log line or metric label takes one.

pub mod metrics;

use crate::config::LogFormat;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::collections::HashMap;
use std::sync::OnceLock;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The registry `/metrics` renders; filled by the OTel Prometheus reader.
static REGISTRY: OnceLock<prometheus::Registry> = OnceLock::new();
/// Whether spans are exported (trace context is only worth carrying then).
static TRACING_EXPORTED: OnceLock<bool> = OnceLock::new();

/// Keeps the exporters alive; flushes them on [`Telemetry::shutdown`].
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporters.
    pub fn shutdown(self) {
        if let Some(t) = self.tracer {
            let _ = t.shutdown();
        }
        if let Some(m) = self.meter {
            let _ = m.shutdown();
        }
    }
}

fn otlp_enabled() -> bool {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_ok_and(|v| !v.is_empty())
}

fn resource() -> Resource {
    // The SDK reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES itself.
    let mut b = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        b = b.with_service_name("lobbyd");
    }
    b.build()
}

/// Installs logging, and tracing/metrics export where configured. Call
/// once, from inside the Tokio runtime; later calls only return an inert
/// guard.
pub fn init(format: LogFormat) -> Telemetry {
    let mut filter = EnvFilter::try_from_env("LOBBYD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // These crates trace whole frames (tokens included) at trace level:
    // when the filter would let trace through, cap them at info.
    if filter.max_level_hint() == Some(tracing_subscriber::filter::LevelFilter::TRACE) {
        for quiet in [
            "tungstenite=info",
            "tokio_tungstenite=info",
            "axum::extract::ws=info",
            "hyper=info",
            "h2=info",
        ] {
            filter = filter.add_directive(quiet.parse().expect("valid directive"));
        }
    }
    let otlp = otlp_enabled();
    let _ = TRACING_EXPORTED.set(otlp);
    let meter = init_metrics(otlp);
    let tracer = if otlp {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => Some(
                SdkTracerProvider::builder()
                    .with_resource(resource())
                    .with_batch_exporter(exporter)
                    .build(),
            ),
            Err(e) => {
                eprintln!("lobbyd: OTLP trace exporter disabled: {e}");
                None
            }
        }
    } else {
        None
    };
    let otel_layer = tracer.as_ref().map(|t| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing_opentelemetry::layer()
            .with_tracer(t.tracer("lobbyd"))
            .with_filter(EnvFilter::new("lobbyd=info"))
    });
    let fmt = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel_layer)
        .try_init();
    Telemetry { tracer, meter }
}

/// Sets up the meter provider: a Prometheus reader always, OTLP push when
/// configured. Idempotent.
fn init_metrics(otlp: bool) -> Option<SdkMeterProvider> {
    if REGISTRY.get().is_some() {
        return None;
    }
    let registry = prometheus::Registry::new();
    let reader = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .without_target_info()
        .build()
        .ok()?;
    let mut builder = SdkMeterProvider::builder()
        .with_resource(resource())
        .with_reader(reader);
    if otlp {
        match opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => builder = builder.with_periodic_exporter(exporter),
            Err(e) => eprintln!("lobbyd: OTLP metric exporter disabled: {e}"),
        }
    }
    let provider = builder.build();
    opentelemetry::global::set_meter_provider(provider.clone());
    let _ = REGISTRY.set(registry);
    Some(provider)
}

/// The current metrics in Prometheus text format.
pub fn prometheus_text() -> String {
    let Some(registry) = REGISTRY.get() else {
        return String::new();
    };
    let mut out = Vec::new();
    let _ = prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &registry.gather(),
        &mut out,
    );
    String::from_utf8(out).unwrap_or_default()
}

struct Carrier(HashMap<String, String>);

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The W3C `traceparent` of the current span, when spans are exported:
/// it travels in the pub/sub envelope so the delivery on another node is
/// linked to the request that caused it.
pub fn current_traceparent() -> Option<String> {
    if !TRACING_EXPORTED.get().copied().unwrap_or(false) {
        return None;
    }
    let cx = tracing::Span::current().context();
    let mut carrier = Carrier(HashMap::new());
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.0.remove("traceparent")
}

/// Records the OpenTelemetry trace and span ids on `span` (fields
/// `trace_id`, `span_id`), so JSON log lines inside it carry them. Only
/// when spans are exported: otherwise there are no ids to correlate.
pub fn record_ids(span: &tracing::Span) {
    use opentelemetry::trace::TraceContextExt;
    if !TRACING_EXPORTED.get().copied().unwrap_or(false) {
        return;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.record("trace_id", tracing::field::display(sc.trace_id()));
        span.record("span_id", tracing::field::display(sc.span_id()));
    }
}

/// Makes `span` a child of the remote `traceparent` (a delivery span
/// linked to the request on the committing node).
pub fn set_remote_parent(span: &tracing::Span, traceparent: &str) {
    let mut carrier = Carrier(HashMap::new());
    carrier
        .0
        .insert("traceparent".into(), traceparent.to_owned());
    let cx = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(cx);
}
