//! The stop switch: `!stop` (or `hermit stop-all`) halts every running
//! turn and tool process at once, outside the model, and holds every new
//! action until `!resume`. The state is kept in `hermit.db`, so a stopped
//! Hermit is still stopped after a restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension};

pub struct Halt {
    db: Mutex<Connection>,
    turns: Mutex<HashMap<u64, Arc<AtomicBool>>>,
    next: AtomicU64,
}

/// A running turn, known to the switch until it is dropped.
pub(crate) struct TurnGuard<'a> {
    halt: &'a Halt,
    id: u64,
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        self.halt
            .turns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Halt {
    pub(crate) fn new(db: Connection) -> Self {
        let halt = Self {
            db: Mutex::new(db),
            turns: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        };
        crate::sandbox::set_halted(halt.is_halted());
        halt
    }

    /// Whether Hermit is stopped (read from the database, so a stop set
    /// by another process counts).
    pub(crate) fn is_halted(&self) -> bool {
        self.halted_by().is_some()
    }

    /// Who stopped it, if stopped.
    /// Also brings this process's hold on tool processes in line with the
    /// database (a `hermit resume` from another process lifts it here).
    pub fn halted_by(&self) -> Option<String> {
        let by = halted_by(&self.db.lock().unwrap_or_else(|e| e.into_inner()));
        crate::sandbox::set_halted(by.is_some());
        by
    }

    pub(crate) fn register(&self, cancel: Arc<AtomicBool>) -> TurnGuard<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.turns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, cancel);
        TurnGuard { halt: self, id }
    }

    /// Stops: the state first (so nothing new starts), then every turn of
    /// this process, then every sandboxed process. Returns how many turns
    /// and processes were stopped.
    pub fn stop(&self, by: &str) -> anyhow::Result<(usize, usize)> {
        self.db.lock().unwrap_or_else(|e| e.into_inner()).execute(
            "INSERT INTO trust_state (key, value) VALUES ('halted', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [by],
        )?;
        crate::sandbox::set_halted(true);
        let turns: Vec<_> = self
            .turns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for t in &turns {
            t.store(true, Ordering::SeqCst);
        }
        let processes = crate::sandbox::kill_all_running();
        Ok((turns.len(), processes))
    }

    pub fn resume(&self) -> anyhow::Result<()> {
        self.db
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .execute("DELETE FROM trust_state WHERE key = 'halted'", [])?;
        crate::sandbox::set_halted(false);
        Ok(())
    }
}

/// Who stopped Hermit, per this database, if it is stopped.
pub fn halted_by(db: &Connection) -> Option<String> {
    db.query_row(
        "SELECT value FROM trust_state WHERE key = 'halted'",
        [],
        |r| r.get::<_, String>(0),
    )
    .optional()
    .ok()
    .flatten()
    .filter(|v| v != "0")
}
