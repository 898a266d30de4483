//! The event consumer's metrics (see docs/operations.md).

use proto::ticketing::v1 as tpb;

/// What an operator asks of the consumer: how far behind it is (in events
/// from progress reports, and in time from every applied batch, so the
/// figure is fresh exactly when events pour in), how long events take from
/// commit to applied, and which replica holds the lease.
pub(crate) struct Metrics {
    pub(crate) lag: opentelemetry::metrics::Gauge<u64>,
    pub(crate) lag_time: opentelemetry::metrics::Gauge<f64>,
    applied_latency: opentelemetry::metrics::Histogram<f64>,
    pub(crate) lease: opentelemetry::metrics::Gauge<u64>,
}

impl Metrics {
    /// `events` were just committed here: the newest one's age is how far
    /// this consumer trails ticketing.
    pub(crate) fn applied(&self, events: &[tpb::Event]) {
        let now = kit::time::now_micros();
        let mut newest = None;
        for event in events {
            let Some(committed) = event
                .create_time
                .as_ref()
                .and_then(kit::time::from_timestamp)
            else {
                continue;
            };
            let age = (now - committed).max(0) as f64 / 1e6;
            self.applied_latency.record(age, &[]);
            newest = Some(age);
        }
        if let Some(age) = newest {
            self.lag_time.record(age, &[]);
        }
    }
}

/// Instruments are made on first use, after telemetry is installed.
pub(crate) fn get() -> &'static Metrics {
    static METRICS: std::sync::OnceLock<Metrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| {
        let meter = opentelemetry::global::meter("inbox");
        Metrics {
            lag: meter
                .u64_gauge("inbox.consumer.lag")
                .with_unit("{event}")
                .with_description("events committed in ticketing and not yet applied here")
                .build(),
            lag_time: meter
                .f64_gauge("inbox.consumer.lag_time")
                .with_unit("s")
                .with_description("age of the newest event applied (0 when caught up)")
                .build(),
            applied_latency: meter
                .f64_histogram("inbox.events.apply.latency")
                .with_unit("s")
                .with_description(
                    "time from an event's commit in ticketing to its application here",
                )
                .with_boundaries(kit::observe::LATENCY_BOUNDARIES.to_vec())
                .build(),
            lease: meter
                .u64_gauge("inbox.consumer.lease.held")
                .with_description("1 on the replica that holds the consumer lease, 0 elsewhere")
                .build(),
        }
    })
}
