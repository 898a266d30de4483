//! A CLIENT span per database statement, inside whatever span runs it, and
//! the `db.client.operation.duration` histogram. sea-orm has no tracing of
//! its own; its metric callback reports each statement's duration after
//! it ran, so the span is written afterwards with the measured start.
//! (Transaction boundaries are not statements sea-orm reports: each
//! transaction has a span of its own, `kit::transaction`, whose statements
//! are its children.)

use std::time::SystemTime;

use opentelemetry::{
    KeyValue,
    metrics::Histogram,
    trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _},
};

/// Traces and measures every statement `db` runs (set before cloning it:
/// clones made earlier keep no callback).
pub fn observe(service: &'static str, db: &mut sea_orm::DatabaseConnection) {
    let system = crate::transaction::system_name(db.get_database_backend());
    let duration: Histogram<f64> = opentelemetry::global::meter(service)
        .f64_histogram("db.client.operation.duration")
        .with_unit("s")
        .with_description("duration of each database statement")
        .with_boundaries(crate::observe::LATENCY_BOUNDARIES.to_vec())
        .build();
    db.set_metric_callback(move |info| {
        let operation = operation_of(&info.statement.sql);
        let attributes = [
            KeyValue::new("db.system.name", system),
            KeyValue::new("db.operation.name", operation),
        ];
        duration.record(info.elapsed.as_secs_f64(), &attributes);
        // Only inside a sampled trace: a statement of a background loop
        // would otherwise start a trace of its own.
        let context = opentelemetry::Context::current();
        if !context.span().span_context().is_sampled() {
            return;
        }
        let end = SystemTime::now();
        let tracer = opentelemetry::global::tracer(service);
        let mut span = tracer
            .span_builder(operation)
            .with_kind(SpanKind::Client)
            .with_start_time(end - info.elapsed)
            .with_attributes(attributes)
            .start_with_context(&tracer, &context);
        if info.failed {
            span.set_status(Status::error("statement failed"));
        }
        span.end_with_timestamp(end);
    });
}

/// The statement's kind (`SELECT`, `INSERT`, `UPDATE`, `DELETE`, `WITH`,
/// ...), from its first word: the SQL text itself may carry data.
fn operation_of(sql: &str) -> &'static str {
    let word = sql.split_whitespace().next().unwrap_or_default();
    [
        "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "BEGIN", "COMMIT", "ROLLBACK",
    ]
    .into_iter()
    .find(|kind| word.eq_ignore_ascii_case(kind))
    .unwrap_or("OTHER")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_statement_is_named_by_its_kind_and_never_by_its_text() {
        assert_eq!(super::operation_of("SELECT \"a\" FROM t"), "SELECT");
        assert_eq!(super::operation_of("  insert into t values (1)"), "INSERT");
        assert_eq!(super::operation_of("LISTEN secret_channel"), "OTHER");
        assert_eq!(super::operation_of(""), "OTHER");
    }
}
