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

/// What is logged when `RUST_LOG` is unset: the database driver logs every
/// statement at INFO.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,h2=warn,tower=warn";

/// `RUST_LOG` (or `default`), refused when it does not parse: a typo would
/// otherwise silently log at the default level.
pub fn log_filter(
    source: &dyn crate::config::Source,
    default: &str,
) -> Result<EnvFilter, crate::config::ConfigError> {
    let directives = source.get("RUST_LOG");
    EnvFilter::builder()
        .parse(directives.as_deref().unwrap_or(default))
        .map_err(|err| crate::config::ConfigError {
            key: "RUST_LOG".into(),
            value: directives.unwrap_or_default(),
            reason: err.to_string(),
        })
}

/// `LOG_FORMAT`: `text` (the default) or `json`.
pub fn json_logs(source: &dyn crate::config::Source) -> Result<bool, crate::config::ConfigError> {
    match source.get("LOG_FORMAT") {
        None => Ok(false),
        Some(value) if value.eq_ignore_ascii_case("text") => Ok(false),
        Some(value) if value.eq_ignore_ascii_case("json") => Ok(true),
        Some(value) => Err(crate::config::ConfigError {
            key: "LOG_FORMAT".into(),
            value,
            reason: "expected text or json".into(),
        }),
    }
}

/// Installs the global subscriber. `RUST_LOG` filters (default `info`, with
/// the database driver's per-statement logs held at `warn`).
pub fn init(
    service_name: &'static str,
) -> Result<TelemetryGuard, Box<dyn std::error::Error + Send + Sync>> {
    let source = crate::config::Environment;
    let filter = log_filter(&source, DEFAULT_FILTER)?;
    let json = json_logs(&source)?;
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn log_settings_are_validated_and_name_the_variable() {
        let source = |key: &str, value: &str| -> HashMap<String, String> {
            [(key.to_owned(), value.to_owned())].into()
        };
        assert!(log_filter(&HashMap::new(), DEFAULT_FILTER).is_ok());
        assert!(log_filter(&source("RUST_LOG", "debug,sqlx=warn"), DEFAULT_FILTER).is_ok());
        let err = log_filter(&source("RUST_LOG", "info,sqlx=loud"), DEFAULT_FILTER).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid setting RUST_LOG="),
            "{err}"
        );
        assert!(json_logs(&source("LOG_FORMAT", "JSON")).unwrap());
        assert!(!json_logs(&source("LOG_FORMAT", "text")).unwrap());
        let err = json_logs(&source("LOG_FORMAT", "xml")).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid setting LOG_FORMAT="),
            "{err}"
        );
    }
}
