//! Spreading groups over the workers that share a state database: how many groups each worker
//! should carry, when a worker takes a free group, and how many it gives back when it carries
//! too many.
//!
//! The rules are arithmetic on what the database says (the live workers, how many groups each
//! holds); the store that has leases (the PostgreSQL store) reads those numbers and applies them.
//! They hold three promises:
//!
//! - **Even spread**: with `W` live workers and `G` groups, each worker carries at most its
//!   [`fair_share`], `ceil(G / W)`, while the others are under theirs. Since `W` shares of
//!   `ceil(G / W)` add up to at least `G`, the live workers together always have room for every
//!   group.
//! - **No group left behind**: a group that stays free longer than [`Census::patience`] (about
//!   one renewal interval, when the workers under their share did not take it: they died, or
//!   their configuration does not list it), or that nobody under its share is left to take, is
//!   taken by any worker, whatever its share.
//! - **No flapping**: a worker over its share gives back, at each renewal, only what the workers
//!   under their share can take ([`Census::surplus`]), and at most half a share; a worker at its
//!   share does not take back a group that was just given up, and the worker that takes it stays
//!   within its own share, so it does not give it up again.

use std::time::Duration;

/// How many groups each of `live_workers` workers should carry so that together they carry
/// `groups`: `ceil(groups / live_workers)`. A worker always counts itself, so fewer than one
/// live worker counts as one.
pub fn fair_share(groups: usize, live_workers: usize) -> usize {
    groups.div_ceil(live_workers.max(1))
}

/// What a worker knows of the workers sharing the database when it looks at a free group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Census {
    /// How many groups the workers' configurations list (the largest number any live worker
    /// announced: the workers normally share one configuration).
    pub groups: usize,
    /// How many groups each live worker holds, this worker included.
    pub held: Vec<usize>,
    /// How many groups this worker holds.
    pub mine: usize,
    /// How long a group may stay free for the workers under their share before any worker takes
    /// it (a renewal interval: a third of a lease).
    pub patience: Duration,
}

impl Census {
    /// The fair share of each live worker.
    pub fn share(&self) -> usize {
        fair_share(self.groups, self.held.len())
    }

    /// How many of its groups this worker gives back at this renewal: its excess over its share,
    /// but no more than the other live workers lack to reach theirs (a group given up has a
    /// taker that keeps it), and no more than half a share (rounded up) at once. A new worker
    /// beside two that carry everything thus gets its share within about a renewal, beside one
    /// within two; and a worker that counts as live but takes nothing (it just died, or its
    /// configuration lacks the groups) makes the others restart at most half a share of groups
    /// per renewal until it stops counting.
    pub fn surplus(&self) -> usize {
        let share = self.share();
        let excess = self.mine.saturating_sub(share);
        // This worker lacks nothing when it has an excess: the sum is the others'.
        let lacking: usize = self.held.iter().map(|&n| share.saturating_sub(n)).sum();
        excess.min(lacking).min(share.div_ceil(2).max(1))
    }

    /// Whether this worker takes a group that has been free for `free_for` (`None`: never leased,
    /// or free for longer than anyone knows).
    ///
    /// Under its share, a worker always does. At or over it, only when the group has waited
    /// longer than [`Census::patience`], or when no other live worker is under its share (nobody
    /// else would take it).
    pub fn may_take(&self, free_for: Option<Duration>) -> bool {
        let share = self.share();
        if self.mine < share {
            return true;
        }
        let waited_long = free_for.is_none_or(|f| f >= self.patience);
        // `held` counts this worker too, which is not under its share here.
        let someone_under = self.held.iter().any(|&n| n < share);
        waited_long || !someone_under
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn census(groups: usize, held: &[usize], mine: usize) -> Census {
        Census { groups, held: held.to_vec(), mine, patience: Duration::from_secs(10) }
    }

    #[test]
    fn the_shares_of_the_live_workers_cover_every_group() {
        for groups in 0..=40 {
            for workers in 1..=7 {
                let share = fair_share(groups, workers);
                assert!(share * workers >= groups, "{groups} groups, {workers} workers: share {share}");
                assert!(share * workers < groups + workers, "{groups} groups, {workers} workers: share {share}");
            }
        }
        assert_eq!(fair_share(30, 3), 10);
        assert_eq!(fair_share(30, 2), 15);
        assert_eq!(fair_share(10, 3), 4);
        assert_eq!(fair_share(5, 0), 5, "a worker counts itself");
    }

    #[test]
    fn a_worker_over_its_share_gives_back_what_the_others_lack_half_a_share_at_a_time() {
        assert_eq!(census(30, &[10, 10, 10], 10).surplus(), 0, "at its share");
        assert_eq!(census(30, &[3, 13, 14], 3).surplus(), 0, "under its share");
        assert_eq!(census(30, &[15, 15, 0], 15).surplus(), 5, "its whole excess when the others lack it");
        assert_eq!(census(30, &[30, 0, 0], 30).surplus(), 5, "half a share at once");
        assert_eq!(census(30, &[11, 10, 10], 11).surplus(), 0, "nobody lacks a group: nobody would take it");
        assert_eq!(census(31, &[12, 10, 9], 12).surplus(), 1, "only what the others lack");
        assert_eq!(census(3, &[3, 0, 0], 3).surplus(), 1, "at least one");
        // A worker alone with 30 groups, then two more: renewal after renewal, each taking what
        // is given up.
        let mut held = vec![30, 0, 0];
        let mut renewals = 0;
        while held.iter().any(|&n| n != 10) {
            let given = census(30, &held, held[0]).surplus();
            assert!(given > 0, "{held:?}");
            held[0] -= given;
            for _ in 0..given {
                let taker = held.iter().position(|&n| n < 10).unwrap();
                held[taker] += 1;
            }
            renewals += 1;
        }
        assert_eq!(renewals, 4);
    }

    #[test]
    fn under_its_share_a_worker_takes_a_free_group_at_once() {
        let c = census(30, &[20, 4, 6], 4);
        assert!(c.may_take(Some(Duration::ZERO)));
    }

    #[test]
    fn at_its_share_a_worker_leaves_a_fresh_free_group_to_those_under_theirs() {
        let c = census(30, &[10, 9, 10], 10);
        assert!(!c.may_take(Some(Duration::from_secs(1))), "another worker is under its share");
        assert!(c.may_take(Some(Duration::from_secs(10))), "a group free that long is taken by anyone");
        assert!(c.may_take(None), "a group never leased is taken by anyone");
    }

    #[test]
    fn when_every_live_worker_is_at_its_share_anyone_takes_a_free_group() {
        let c = census(30, &[10, 10, 10], 10);
        assert!(c.may_take(Some(Duration::ZERO)));
        // More groups than the configurations announced (a group added to one configuration).
        let c = census(4, &[2, 2], 2);
        assert!(c.may_take(Some(Duration::ZERO)));
    }
}
