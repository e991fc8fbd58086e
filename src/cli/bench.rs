//! `hermit bench`: the benchmarks, one module each: the model's speed
//! (`llm`), the assistant's choices on a task suite (`agent`), the sandbox's start-up cost (`sandbox`), memory at scale
//! (`memory`), and, against a running `hermit up` as its owner's client
//! (`owner`), the Matrix path (`matrix`), reminders' lateness
//! (`reminders`) and voice notes (`voice`).

mod agent;
mod llm;
mod matrix;
mod memory;
mod owner;
mod reminders;
mod sandbox;
mod voice;

use super::Global;
use super::args::BenchCommand;

pub fn run(global: &Global, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Llm { json, model, reps } => {
            let global = Global {
                model,
                ..global.clone()
            };
            llm::run(&global, json, reps)
        }
        BenchCommand::Agent {
            json,
            model,
            suite,
            only,
        } => {
            let global = Global {
                model,
                ..global.clone()
            };
            agent::run(&global, json, suite.as_deref(), only.as_deref())
        }
        BenchCommand::Matrix { json, runs } => matrix::run(global, json, runs),
        BenchCommand::Reminders { json, count } => reminders::run(global, json, count),
        BenchCommand::Voice { json, runs, file } => voice::run(global, json, runs, &file),
        BenchCommand::Sandbox { json, runs } => sandbox::run(global, json, runs),
        BenchCommand::Memory {
            json,
            messages,
            dir,
        } => memory::run(global, json, messages, dir.as_deref()),
    }
}

/// The median of `v` (sorted in place); `v` is not empty.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
