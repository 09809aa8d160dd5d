//! How the CLI shows progress events on stderr: one plain line per event (logs, pipes, scripts),
//! or, on a terminal, progress bars per group for passes with many writes (long initial syncs),
//! with the same lines printed above the bars.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::event::ProgressEvent;

/// The plain line of an event (none for events that only move a progress bar).
pub fn line(event: &ProgressEvent) -> Option<String> {
    let now = chrono::Utc::now().format("%H:%M:%S");
    Some(match event {
        ProgressEvent::PassStarted { group, trigger } => format!("[{now}] {group}: pass ({trigger:?})"),
        ProgressEvent::Planned { group, actions, conflicts } => {
            format!("[{now}] {group}: {actions} writes planned, {conflicts} conflicts")
        }
        ProgressEvent::PassFinished { report } => format!("[{now}] {report}"),
        ProgressEvent::Retrying { group, error, attempt, retry_in } => format!(
            "[{now}] {group}: attempt {attempt} failed ({}), retrying in {} ms",
            error.message,
            retry_in.as_millis()
        ),
        ProgressEvent::MemberJoined { group, member } => format!("[{now}] {group}: {member} joined"),
        ProgressEvent::MemberLeft { group, member, copies_removed } => format!(
            "[{now}] {group}: {member} left ({})",
            if *copies_removed { "copies removed" } else { "copies kept" }
        ),
        ProgressEvent::ServiceStarted { groups } => format!("[{now}] running {}", groups.join(", ")),
        ProgressEvent::Written { .. } | ProgressEvent::ServiceStopped => return None,
    })
}

/// A pass with at least this many writes gets a bar; smaller ones finish before a bar helps.
const BAR_THRESHOLD: usize = 20;

/// Progress bars on a terminal: a spinner while a group's pass reads its folders, a bar while it
/// writes, gone when the pass finishes.
pub struct TerminalProgress {
    bars: MultiProgress,
    passes: BTreeMap<String, ProgressBar>,
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new(ProgressDrawTarget::stderr())
    }
}

impl TerminalProgress {
    /// Bars drawn to `target` (stderr for the CLI; hidden in tests).
    pub fn new(target: ProgressDrawTarget) -> Self {
        Self { bars: MultiProgress::with_draw_target(target), passes: BTreeMap::new() }
    }

    /// The group's bar, if its pass shows one.
    pub fn bar(&self, group: &str) -> Option<&ProgressBar> {
        self.passes.get(group)
    }

    /// Shows one event.
    pub fn show(&mut self, event: &ProgressEvent) {
        if let Some(text) = line(event) {
            // Printed above the bars, so they are not torn apart.
            let _ = self.bars.println(text);
        }
        match event {
            ProgressEvent::PassStarted { group, .. } => {
                let spinner = self.bars.add(ProgressBar::new_spinner());
                spinner.set_style(
                    ProgressStyle::with_template("{spinner} {prefix}: {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                spinner.set_prefix(group.clone());
                spinner.set_message("reading folders");
                spinner.enable_steady_tick(Duration::from_millis(120));
                self.replace(group, spinner);
            }
            ProgressEvent::Planned { group, actions, .. } => {
                if *actions < BAR_THRESHOLD {
                    self.finish(group);
                    return;
                }
                let bar = self.bars.add(ProgressBar::new(*actions as u64));
                bar.set_style(
                    ProgressStyle::with_template("{prefix}: [{bar:40}] {pos}/{len} writes, {elapsed}, eta {eta}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_prefix(group.clone());
                self.replace(group, bar);
            }
            ProgressEvent::Written { group, done, total } => {
                if let Some(bar) = self.passes.get(group) {
                    bar.set_length(*total as u64);
                    bar.set_position(*done as u64);
                }
            }
            ProgressEvent::PassFinished { report } => self.finish(&report.group),
            ProgressEvent::ServiceStopped => {
                let groups: Vec<String> = self.passes.keys().cloned().collect();
                for g in groups {
                    self.finish(&g);
                }
            }
            _ => {}
        }
    }

    fn replace(&mut self, group: &str, bar: ProgressBar) {
        self.finish(group);
        self.passes.insert(group.to_owned(), bar);
    }

    fn finish(&mut self, group: &str) {
        if let Some(bar) = self.passes.remove(group) {
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::GroupReport;

    #[test]
    fn a_long_pass_gets_a_bar_that_follows_the_writes_and_goes_when_it_finishes() {
        let mut p = TerminalProgress::new(ProgressDrawTarget::hidden());
        let g = "contacts".to_owned();
        p.show(&ProgressEvent::PassStarted { group: g.clone(), trigger: crate::event::Trigger::Start });
        assert_eq!(p.bar(&g).and_then(ProgressBar::length), None, "a spinner while reading");
        p.show(&ProgressEvent::Planned { group: g.clone(), actions: 500, conflicts: 0 });
        assert_eq!(p.bar(&g).and_then(ProgressBar::length), Some(500));
        p.show(&ProgressEvent::Written { group: g.clone(), done: 150, total: 500 });
        assert_eq!(p.bar(&g).map(ProgressBar::position), Some(150));
        let report = GroupReport::started(g.clone());
        p.show(&ProgressEvent::PassFinished { report });
        assert!(p.bar(&g).is_none());
    }

    #[test]
    fn a_short_pass_gets_no_bar_and_bar_only_events_have_no_line() {
        let mut p = TerminalProgress::new(ProgressDrawTarget::hidden());
        p.show(&ProgressEvent::PassStarted { group: "g".into(), trigger: crate::event::Trigger::Notification });
        p.show(&ProgressEvent::Planned { group: "g".into(), actions: 3, conflicts: 0 });
        assert!(p.bar("g").is_none());
        assert_eq!(line(&ProgressEvent::Written { group: "g".into(), done: 1, total: 3 }), None);
        assert!(line(&ProgressEvent::Planned { group: "g".into(), actions: 3, conflicts: 1 }).is_some());
    }
}
