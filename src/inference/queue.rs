//! The model's queue, fair between people: every conversation shares one
//! model, so the order in which waiting generations run decides who waits.
//! The owner's run first; other people's take turns (whoever was served
//! least recently goes next), so one busy member, or many rooms, cannot
//! starve anyone. Control jobs (forget a conversation, measure, stop) keep
//! their place in line.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::Receiver;

use super::engine::Job;

/// What the picker needs to know of a waiting job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Entry<'a> {
    /// Forget, throughput, shutdown: run in order.
    Control,
    /// A generation for this person (`None`: not said, treated as the owner's:
    /// Hermit's own work at the box).
    Generate(Option<&'a str>),
}

/// The index of the job to run next among `waiting` (in arrival order).
/// Only the generations before the first control job compete, so a control
/// job is never overtaken by one that came after it.
pub(super) fn pick(waiting: &[Entry<'_>], served: &HashMap<String, u64>) -> usize {
    let competing = waiting
        .iter()
        .position(|e| *e == Entry::Control)
        .unwrap_or(waiting.len());
    if competing == 0 {
        return 0;
    }
    let owner = |who: Option<&str>| who.is_none_or(|w| w == crate::vocab::OWNER);
    if let Some(i) = waiting[..competing]
        .iter()
        .position(|e| matches!(e, Entry::Generate(w) if owner(*w)))
    {
        return i;
    }
    // The person served least recently (never: 0), first come on a tie.
    (0..competing)
        .min_by_key(|&i| match waiting[i] {
            Entry::Generate(Some(w)) => served.get(w).copied().unwrap_or(0),
            _ => 0,
        })
        .unwrap_or(0)
}

/// The engine's inbox, read fairly (see the module's comment).
pub(super) struct FairQueue {
    rx: Receiver<Job>,
    waiting: VecDeque<Job>,
    served: HashMap<String, u64>,
    tick: u64,
}

impl FairQueue {
    pub(super) fn new(rx: Receiver<Job>) -> Self {
        Self {
            rx,
            waiting: VecDeque::new(),
            served: HashMap::new(),
            tick: 0,
        }
    }

    /// The next job, waiting for one; `None` once every sender is gone and
    /// nothing waits.
    pub(super) fn next(&mut self) -> Option<Job> {
        if self.waiting.is_empty() {
            self.waiting.push_back(self.rx.recv().ok()?);
        }
        while let Ok(job) = self.rx.try_recv() {
            self.waiting.push_back(job);
        }
        let entries: Vec<Entry<'_>> = self
            .waiting
            .iter()
            .map(|j| match j {
                Job::Generate { request, .. } => Entry::Generate(request.options.who.as_deref()),
                _ => Entry::Control,
            })
            .collect();
        let i = pick(&entries, &self.served);
        let job = self.waiting.remove(i)?;
        if let Job::Generate { request, .. } = &job
            && let Some(who) = &request.options.who
        {
            self.tick += 1;
            self.served.insert(who.clone(), self.tick);
        }
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Entry::{Control, Generate};

    #[test]
    fn the_owner_goes_first_and_others_take_turns() {
        let mut served = HashMap::new();
        // Alice has been served; Bob has not: Bob goes first.
        served.insert("@alice:box".to_string(), 5);
        let waiting = [
            Generate(Some("@alice:box")),
            Generate(Some("@alice:box")),
            Generate(Some("@bob:box")),
        ];
        assert_eq!(pick(&waiting, &served), 2);
        // The owner, wherever in line, before anyone else.
        let waiting = [
            Generate(Some("@alice:box")),
            Generate(Some("@bob:box")),
            Generate(Some(crate::vocab::OWNER)),
        ];
        assert_eq!(pick(&waiting, &served), 2);
        assert_eq!(
            pick(&[Generate(Some("@bob:box")), Generate(None)], &served),
            1
        );
        // Two never served: first come.
        let waiting = [Generate(Some("@carol:box")), Generate(Some("@bob:box"))];
        assert_eq!(pick(&waiting, &HashMap::new()), 0);
    }

    #[test]
    fn a_control_job_is_never_overtaken_by_what_came_after_it() {
        let served = HashMap::new();
        assert_eq!(pick(&[Control, Generate(None)], &served), 0);
        // The owner's generation after a shutdown does not jump it.
        let waiting = [Generate(Some("@bob:box")), Control, Generate(None)];
        assert_eq!(pick(&waiting, &served), 0);
    }
}
