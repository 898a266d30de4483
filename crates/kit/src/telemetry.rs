//! Logs, traces and metrics. Logs go to stdout (JSON when `LOG_FORMAT=json`,
//! as in production); traces and metrics go out over OTLP only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and nothing is exported otherwise.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{Resource, metrics::SdkMeterProvider, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// Flushes exporters when dropped: keep it alive until `main` returns.
#[must_use = "dropping the guard flushes and stops telemetry"]
pub struct TelemetryGuard {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(tracer) = self.tracer.take()
            && let Err(err) = tracer.shutdown()
        {
            eprintln!("trace exporter did not flush: {err}");
        }
        if let Some(meter) = self.meter.take()
            && let Err(err) = meter.shutdown()
        {
            eprintln!("metric exporter did not flush: {err}");
        }
    }
}

/// Installs the global subscriber. `RUST_LOG` filters (default `info`, with
/// the database driver's per-statement logs held at `warn`).
pub fn init(
    service_name: &'static str,
) -> Result<TelemetryGuard, Box<dyn std::error::Error + Send + Sync>> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,h2=warn,tower=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let fmt = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .boxed()
    };

    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let export = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.is_empty());
    let (tracer, meter, otel_layer) = if export {
        let resource = Resource::builder().with_service_name(service_name).build();
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?;
        let tracer = SdkTracerProvider::builder()
            .with_batch_exporter(spans)
            .with_resource(resource.clone())
            .build();
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()?;
        let meter = SdkMeterProvider::builder()
            .with_periodic_exporter(metrics)
            .with_resource(resource)
            .build();
        opentelemetry::global::set_meter_provider(meter.clone());
        let layer = tracing_opentelemetry::layer().with_tracer(tracer.tracer(service_name));
        (Some(tracer), Some(meter), Some(layer))
    } else {
        (None, None, None)
    };

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel_layer)
        .try_init()?;
    if export {
        tracing::info!("exporting traces and metrics over OTLP");
    }
    Ok(TelemetryGuard { tracer, meter })
}
