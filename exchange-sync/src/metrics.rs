//! The service's metrics, in the Prometheus text format (`/metrics` of [`crate::http`]).
//!
//! Built on the `prometheus` crate with a registry of the service's own: a library that Python
//! and .NET processes embed must not install a process-wide recorder, and two services in one
//! process keep their figures apart. Every figure is labelled by group.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `exchange_sync_passes_total{group,outcome}` | counter | passes, by how they ended |
//! | `exchange_sync_items_written_total{group,kind}` | counter | copies `created`, `updated`, `deleted`, `restored` |
//! | `exchange_sync_errors_total{group,kind}` | counter | errors by kind (`auth`, `unreachable`, `throttled`, `state`, ...) |
//! | `exchange_sync_conflicts_total{group}` | counter | field conflicts resolved |
//! | `exchange_sync_throttle_waits_total{group}` | counter | times a server's back-off held the group or parked a folder |
//! | `exchange_sync_throttle_wait_seconds_total{group}` | counter | the back-off asked for, in seconds |
//! | `exchange_sync_notification_to_write_seconds{group}` | histogram | from a change notification to the end of the pass that wrote it |
//! | `exchange_sync_pass_duration_seconds{group}` | histogram | pass durations |
//! | `exchange_sync_parked_members{group}` | gauge | folders parked at their server's request after the last pass |
//! | `exchange_sync_guard_stops_total{group}` | counter | mass-delete guard stops |
//! | `exchange_sync_guard_stopped{group}` | gauge | 1 while the group waits for a confirmation |
//! | `exchange_sync_last_pass_timestamp_seconds{group}` | gauge | when the last pass ended (Unix time) |
//! | `exchange_sync_graph_notifications_total{outcome}` | counter | Graph change notifications `accepted`, or `refused` for a wrong `clientState` (only with `graph_notification_url`) |
//! | `exchange_sync_graph_subscriptions` | gauge | Graph subscriptions held now |
//! | `exchange_sync_graph_subscription_renewals_total` | counter | Graph subscriptions renewed |

use std::time::Duration;

use prometheus::{CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use crate::report::{GroupReport, PassOutcome};

/// The service's metrics.
pub struct Metrics {
    registry: Registry,
    passes: IntCounterVec,
    written: IntCounterVec,
    errors: IntCounterVec,
    conflicts: IntCounterVec,
    throttle_waits: IntCounterVec,
    throttle_seconds: CounterVec,
    latency: HistogramVec,
    duration: HistogramVec,
    parked: GaugeVec,
    guard_stops: IntCounterVec,
    guard_stopped: GaugeVec,
    last_pass: GaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Latency buckets, in seconds: real time is expected within seconds; a poll takes a minute.
const LATENCY_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0];

impl Metrics {
    /// Every metric, registered in a registry of their own.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str| -> prometheus::Result<GaugeVec> {
            let g = GaugeVec::new(Opts::new(name, help), &["group"])?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let histogram = |name: &str, help: &str| -> prometheus::Result<HistogramVec> {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()), &["group"])?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let throttle_seconds = CounterVec::new(
            Opts::new("exchange_sync_throttle_wait_seconds_total", "Back-off asked for by servers, in seconds"),
            &["group"],
        )?;
        registry.register(Box::new(throttle_seconds.clone()))?;
        Ok(Metrics {
            passes: counter("exchange_sync_passes_total", "Sync passes, by outcome", &["group", "outcome"])?,
            written: counter(
                "exchange_sync_items_written_total",
                "Copies written, by kind of write",
                &["group", "kind"],
            )?,
            errors: counter("exchange_sync_errors_total", "Errors, by kind", &["group", "kind"])?,
            conflicts: counter("exchange_sync_conflicts_total", "Field conflicts resolved", &["group"])?,
            throttle_waits: counter(
                "exchange_sync_throttle_waits_total",
                "Times a server's back-off held a group or parked a folder",
                &["group"],
            )?,
            throttle_seconds,
            latency: histogram(
                "exchange_sync_notification_to_write_seconds",
                "From a change notification to the end of the pass that wrote the change",
            )?,
            duration: histogram("exchange_sync_pass_duration_seconds", "Duration of sync passes")?,
            parked: gauge("exchange_sync_parked_members", "Folders parked at their server's request")?,
            guard_stops: counter("exchange_sync_guard_stops_total", "Mass-delete guard stops", &["group"])?,
            guard_stopped: gauge("exchange_sync_guard_stopped", "1 while the group waits for an admin's confirmation")?,
            last_pass: gauge("exchange_sync_last_pass_timestamp_seconds", "When the last pass ended (Unix time)")?,
            registry,
        })
    }

    /// Makes a group's figures appear (at zero) before its first pass.
    pub fn register_group(&self, group: &str) {
        let _ = self.parked.with_label_values(&[group]);
        let _ = self.guard_stopped.with_label_values(&[group]);
        let _ = self.guard_stops.with_label_values(&[group]);
        let _ = self.conflicts.with_label_values(&[group]);
        let _ = self.throttle_waits.with_label_values(&[group]);
        let _ = self.throttle_seconds.with_label_values(&[group]);
        for kind in ["created", "updated", "deleted", "restored"] {
            let _ = self.written.with_label_values(&[group, kind]);
        }
    }

    /// Counts a finished pass (dry runs are not counted); `since_notification` is the time since
    /// the change notification that asked for it, when one did.
    pub fn observe_pass(&self, report: &GroupReport, since_notification: Option<Duration>) {
        if report.outcome == PassOutcome::Planned {
            return;
        }
        let g = report.group.as_str();
        let outcome = match report.outcome {
            PassOutcome::Synced => "synced",
            PassOutcome::PartiallyFailed => "partially_failed",
            PassOutcome::Failed => "failed",
            PassOutcome::StoppedByMassDeleteGuard => "stopped_by_mass_delete_guard",
            PassOutcome::Planned => "planned",
        };
        self.passes.with_label_values(&[g, outcome]).inc();
        let t = report.totals();
        for (kind, n) in
            [("created", t.created), ("updated", t.updated), ("deleted", t.deleted), ("restored", t.restored)]
        {
            self.written.with_label_values(&[g, kind]).inc_by(n as u64);
        }
        for e in report.all_errors() {
            self.errors.with_label_values(&[g, e.kind.as_str()]).inc();
        }
        self.conflicts.with_label_values(&[g]).inc_by(report.conflicts.len() as u64);
        let now = chrono::Utc::now();
        let parked = report.members.iter().filter(|m| m.parked_until.is_some_and(|u| u > now)).count();
        self.parked.with_label_values(&[g]).set(parked as f64);
        if let Some(until) = report.parked_until {
            self.throttle_waits.with_label_values(&[g]).inc();
            let wait = (until - now).num_milliseconds().max(0) as f64 / 1000.0;
            self.throttle_seconds.with_label_values(&[g]).inc_by(wait);
        }
        let stopped = report.outcome == PassOutcome::StoppedByMassDeleteGuard || report.needs_confirmation;
        if stopped {
            self.guard_stops.with_label_values(&[g]).inc();
        }
        self.guard_stopped.with_label_values(&[g]).set(if stopped { 1.0 } else { 0.0 });
        self.duration.with_label_values(&[g]).observe(report.duration.as_secs_f64());
        if let Some(latency) = since_notification
            && t.created + t.updated + t.deleted > 0
        {
            self.latency.with_label_values(&[g]).observe(latency.as_secs_f64());
        }
        self.last_pass.with_label_values(&[g]).set(now.timestamp_millis() as f64 / 1000.0);
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!("cannot render metrics: {e}");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The figures of Microsoft Graph's change notifications, in the text format (appended to
/// [`Metrics::render`] when the service receives them). They are the receiver's own counters,
/// not per group: one subscription receiver serves every group.
pub fn render_graph_notifications(n: &exchange_sync_graph::ChangeNotifications) -> String {
    format!(
        "# HELP exchange_sync_graph_notifications_total Microsoft Graph change notifications received, by outcome\n\
         # TYPE exchange_sync_graph_notifications_total counter\n\
         exchange_sync_graph_notifications_total{{outcome=\"accepted\"}} {}\n\
         exchange_sync_graph_notifications_total{{outcome=\"refused\"}} {}\n\
         # HELP exchange_sync_graph_subscriptions Microsoft Graph subscriptions held\n\
         # TYPE exchange_sync_graph_subscriptions gauge\n\
         exchange_sync_graph_subscriptions {}\n\
         # HELP exchange_sync_graph_subscription_renewals_total Microsoft Graph subscriptions renewed\n\
         # TYPE exchange_sync_graph_subscription_renewals_total counter\n\
         exchange_sync_graph_subscription_renewals_total {}\n",
        n.accepted(),
        n.refused(),
        n.subscription_ids().len(),
        n.renewed()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_is_counted_by_outcome_and_writes() {
        let m = Metrics::new().unwrap();
        m.register_group("g");
        let mut report = GroupReport::started("g");
        report.member_mut("alice@contoso.test").created = 3;
        m.observe_pass(&report, Some(Duration::from_millis(200)));
        let text = m.render();
        assert!(text.contains("exchange_sync_passes_total{group=\"g\",outcome=\"synced\"} 1"), "{text}");
        assert!(text.contains("exchange_sync_items_written_total{group=\"g\",kind=\"created\"} 3"), "{text}");
        assert!(text.contains("exchange_sync_notification_to_write_seconds_count{group=\"g\"} 1"), "{text}");
        assert!(text.contains("exchange_sync_guard_stopped{group=\"g\"} 0"), "{text}");
    }
}
