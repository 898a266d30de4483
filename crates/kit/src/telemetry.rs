//! Logs, traces and metrics. Logs go to stdout (JSON when `LOG_FORMAT=json`,
//! as in production, each line inside a span carrying its OpenTelemetry
//! `trace_id` and `span_id`); traces and metrics go out over OTLP only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and nothing is exported otherwise.
//! The sampler is the one `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG`
//! name (parent-based always-on by default), except that health checks,
//! reflection and the inbox's periodic acknowledgements start no trace.

use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _, TraceId, TracerProvider as _};
use opentelemetry_sdk::{
    Resource,
    metrics::SdkMeterProvider,
    trace::{SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample},
};
use tracing_subscriber::{
    EnvFilter, Layer,
    fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

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

/// Installs the global subscriber, logging to stdout. `RUST_LOG` filters
/// (default `info`, with the database driver's per-statement logs held at
/// `warn`).
pub fn init(
    service_name: &'static str,
) -> Result<TelemetryGuard, Box<dyn std::error::Error + Send + Sync>> {
    init_with_writer(service_name, std::io::stdout)
}

/// [`init`] with logs written to `writer` (tests read the lines back).
pub fn init_with_writer<W>(
    service_name: &'static str,
    writer: W,
) -> Result<TelemetryGuard, Box<dyn std::error::Error + Send + Sync>>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let source = crate::config::Environment;
    let filter = log_filter(&source, DEFAULT_FILTER)?;
    let json = json_logs(&source)?;
    let fmt = if json {
        tracing_subscriber::fmt::layer()
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(WithTraceIds(
                tracing_subscriber::fmt::format()
                    .json()
                    .with_current_span(true),
            ))
            .with_writer(writer)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .with_writer(writer)
            .boxed()
    };

    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let export = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.is_empty());
    let resource = Resource::builder().with_service_name(service_name).build();
    // JSON logs need OpenTelemetry ids even when nothing is exported, so a
    // provider without an exporter still assigns them.
    let tracer = (export || json)
        .then(|| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
            let sampler = Quiet(opentelemetry_sdk::trace::Config::default().sampler);
            let mut builder = SdkTracerProvider::builder()
                .with_sampler(sampler)
                .with_resource(resource.clone());
            if export {
                let spans = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .build()?;
                builder = builder.with_batch_exporter(spans);
            }
            Ok(builder.build())
        })
        .transpose()?;
    let meter = if export {
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .build()?;
        let meter = SdkMeterProvider::builder()
            .with_periodic_exporter(metrics)
            .with_resource(resource)
            .build();
        opentelemetry::global::set_meter_provider(meter.clone());
        Some(meter)
    } else {
        None
    };
    if let Some(tracer) = &tracer {
        // For spans written outside `tracing` (`kit::statements`).
        opentelemetry::global::set_tracer_provider(tracer.clone());
    }
    let otel_layer = tracer
        .as_ref()
        .map(|t| tracing_opentelemetry::layer().with_tracer(t.tracer(service_name)));

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

/// The JSON line of the wrapped formatter with the current OpenTelemetry
/// span's ids in front, as the collector shows them (32 and 16 hex digits).
/// Hand-made because tracing-subscriber's JSON format has no hook for extra
/// fields, and the OpenTelemetry log bridge exports records over OTLP
/// rather than writing the stdout lines Kubernetes collects.
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        // The OpenTelemetry layer makes an entered span's context current.
        let context = opentelemetry::Context::current();
        let span = context.span();
        let ids = span.span_context();
        match line.strip_prefix('{') {
            Some(rest) if ids.is_valid() => write!(
                writer,
                "{{\"trace_id\":\"{}\",\"span_id\":\"{}\",{rest}",
                ids.trace_id(),
                ids.span_id()
            ),
            _ => writer.write_str(&line),
        }
    }
}

/// Root spans that would start a trace for every probe, reflection query
/// or two-second acknowledgement: dropped, whatever the configured sampler.
/// A call that arrives inside a sampled trace is still traced.
#[derive(Debug, Clone)]
struct Quiet(Box<dyn ShouldSample>);

/// Span names (RPC semantic conventions: `service/method`) that start no
/// trace of their own.
pub fn is_quiet(name: &str) -> bool {
    name.starts_with("grpc.health.")
        || name.starts_with("grpc.reflection.")
        || name.ends_with("/AcknowledgeEvents")
}

impl ShouldSample for Quiet {
    fn should_sample(
        &self,
        parent_context: Option<&opentelemetry::Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[opentelemetry::KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let root = parent_context.is_none_or(|cx| !cx.span().span_context().is_valid());
        if root && is_quiet(name) {
            return SamplingResult {
                decision: SamplingDecision::Drop,
                attributes: Vec::new(),
                trace_state: Default::default(),
            };
        }
        self.0
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
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
