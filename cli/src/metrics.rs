//! `upcase serve --metrics ADDR`: the server's counters in the Prometheus
//! text format at `http://ADDR/metrics`.
//!
//! The library counts ([`ServerMetrics`], std atomics only); this module
//! only shows. `prometheus-client` writes the exposition from a
//! [`Collector`] that reads one snapshot of the counters per scrape, so a
//! scrape costs the server nothing between scrapes and the series can
//! never disagree with the library's own names for modes, types and codes.
//! The HTTP side, [`MetricsEndpoint`], is a small server made for hostile
//! peers on a thread of its own, away from the server's loops (module
//! `http`, with its [`Limits`]).

mod http;

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use upcase::conn::FrameCounts;
use upcase::net::{
    MetricsSnapshot, ModeLabel, ProxyOutcome, REPLY_DELAY_BUCKETS_MICROS, ServerMetrics,
};

pub use http::{Limits, MetricsEndpoint};

/// The path metrics are served at; every other path is 404.
pub const METRICS_PATH: &str = "/metrics";

/// Reads the server's counters at each scrape.
#[derive(Debug)]
struct SnapshotCollector(Arc<ServerMetrics>);

/// One labelled series of a family: label value, sample.
type Samples<'a, T> = &'a [(&'a str, T)];

/// Write a family of counters (`name_total`) labelled `label`.
fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    label: &str,
    samples: Samples<u64>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Counter)?;
    for &(value, sample) in samples {
        ConstCounter::new(sample).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

/// Write one unlabelled counter (`name_total`).
fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    sample: u64,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, unit, MetricType::Counter)?;
    ConstCounter::new(sample).encode(metric)
}

/// Write one unlabelled gauge.
fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    sample: i64,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    ConstGauge::new(sample).encode(metric)
}

fn by_mode<T: Copy>(values: &[T; 3]) -> Vec<(&'static str, T)> {
    ModeLabel::ALL
        .iter()
        .zip(values)
        .map(|(mode, &value)| (mode.name(), value))
        .collect()
}

fn by_type(values: &[u64; FrameCounts::TYPES.len()]) -> Vec<(&'static str, u64)> {
    FrameCounts::TYPES
        .iter()
        .zip(values)
        .map(|(frame_type, &value)| (frame_type.name(), value))
        .collect()
}

fn by_code(values: &[u64]) -> Vec<(&'static str, u64)> {
    values
        .iter()
        .enumerate()
        .map(|(slot, &value)| {
            let name = MetricsSnapshot::error_code(slot)
                .and_then(|code| code.name())
                .unwrap_or("other");
            (name, value)
        })
        .collect()
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.snapshot();
        let e = &mut encoder;
        counter(
            e,
            "connections_accepted",
            "TCP connections accepted.",
            None,
            s.connections_accepted,
        )?;
        let mut open = e.encode_descriptor(
            "connections_open",
            "TCP connections open now, by mode (undetected: no byte decided it yet).",
            None,
            MetricType::Gauge,
        )?;
        for (mode, value) in by_mode(&s.connections_open) {
            ConstGauge::new(value).encode(open.encode_family(&[("mode", mode)])?)?;
        }
        counters(
            e,
            "connections_closed",
            "TCP connections closed, by the mode they ended in.",
            None,
            "mode",
            &by_mode(&s.connections_closed),
        )?;
        counters(
            e,
            "connections_refused",
            "TCP connections over the connection limit: told ERROR(BUSY) (framed) or closed (raw, undetected).",
            None,
            "mode",
            &by_mode(&s.connections_refused),
        )?;
        counters(
            e,
            "connections_evicted",
            "TCP connections the server closed to make room for others.",
            None,
            "mode",
            &by_mode(&s.connections_evicted),
        )?;
        counters(
            e,
            "frames_received",
            "Frames received, by type (UNKNOWN: any code SPEC.md does not define).",
            None,
            "type",
            &by_type(&s.frames_in),
        )?;
        counters(
            e,
            "frames_sent",
            "Frames sent, by type.",
            None,
            "type",
            &by_type(&s.frames_out),
        )?;
        counters(
            e,
            "errors_sent",
            "ERROR frames sent, by code.",
            None,
            "code",
            &by_code(&s.errors),
        )?;
        counter(
            e,
            "received",
            "TCP bytes received from clients (PROXY headers not included).",
            Some(&Unit::Bytes),
            s.bytes_in,
        )?;
        counter(
            e,
            "sent",
            "TCP bytes sent to clients.",
            Some(&Unit::Bytes),
            s.bytes_out,
        )?;
        let g = &s.gauges;
        gauge(
            e,
            "memory_budget_used",
            "What is charged to the memory budget: output plus three times unprocessed input, beyond each connection's small reserve.",
            Some(&Unit::Bytes),
            clamp(g.memory_budget_used),
        )?;
        gauge(
            e,
            "memory_budget",
            "The memory budget for buffered input and output over all connections.",
            Some(&Unit::Bytes),
            clamp(g.memory_budget),
        )?;
        gauge(
            e,
            "pending_output",
            "Output bytes queued for clients and not yet taken by them.",
            Some(&Unit::Bytes),
            clamp(g.pending_output),
        )?;
        counters(
            e,
            "udp_datagrams",
            "UDP datagrams: received, sent (replies), dropped (no reply: too large, framed-only server, over the amplification bound, send error), rate_limited (dropped unread: the source was over its rate).",
            None,
            "event",
            &[
                ("received", g.udp_received),
                ("sent", g.udp_sent),
                ("dropped", g.udp_dropped),
                ("rate_limited", g.udp_rate_limited),
            ],
        )?;
        let outcomes: Vec<_> = ProxyOutcome::ALL
            .iter()
            .zip(&s.proxy_headers)
            .map(|(outcome, &value)| (outcome.name(), value))
            .collect();
        counters(
            e,
            "proxy_headers",
            "PROXY protocol headers (--proxy-protocol), by outcome.",
            None,
            "outcome",
            &outcomes,
        )?;
        counter(
            e,
            "log_lines_dropped",
            "Log lines dropped: stderr did not take them as fast as they came (see --log-queue).",
            None,
            s.log_lines_dropped,
        )?;
        let buckets: Vec<(f64, u64)> = REPLY_DELAY_BUCKETS_MICROS
            .iter()
            .map(|&micros| micros as f64 / 1e6)
            .chain([f64::INFINITY])
            .zip(s.reply_delay_buckets)
            .collect();
        let count = s.reply_delay_buckets.iter().sum();
        let mut histogram = e.encode_descriptor(
            "reply_delay",
            "Time from reading a complete request to queuing its reply (framed).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        let sum = s.reply_delay_nanos as f64 / 1e9;
        histogram.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

/// The whole exposition, in the Prometheus text format (0.0.4).
pub fn render(metrics: &Arc<ServerMetrics>) -> String {
    let mut registry = Registry::with_prefix("upcase");
    registry.register_collector(Box::new(SnapshotCollector(Arc::clone(metrics))));
    let mut text = String::new();
    prometheus_text::encode(&mut text, &registry).expect("writing to a String cannot fail");
    text
}

#[cfg(test)]
mod tests;
