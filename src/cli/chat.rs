//! `hermit chat`: a conversation in the terminal, through the running
//! daemon when there is one, else with an agent of its own (the model, the
//! trust layer, memory and, when they are on, the tools).

use std::sync::Arc;

use hermit::channels::terminal::{self, Backend};
use hermit::trust::Trust;

use super::{Global, build_agent, ensure_data_dir, runtime, start_engine};

pub fn run(global: &Global, system: Option<String>) -> anyhow::Result<()> {
    let config = global.load_config()?;
    // A running daemon answers through its control socket, unless this
    // chat asks for something of its own (another model or system prompt).
    if global.model.is_none() && system.is_none() {
        let rt = runtime()?;
        let data = config.data_dir();
        if let Some(client) = rt.block_on(hermit::control::connect(&data)) {
            return rt.block_on(terminal::run(Backend::Remote(client)));
        }
    }
    let engine = start_engine(&config)?;
    let system = system.unwrap_or(config.agent.system_prompt.clone());
    // The trust layer even with the tools off: the stop switch halts this
    // chat's turns too, as it does the daemon's.
    ensure_data_dir(&config)?;
    let trust = Arc::new(Trust::open(&config)?);
    let agent = build_agent(&config, engine, trust)?;
    runtime()?.block_on(terminal::run(Backend::Local {
        agent,
        system_prompt: system,
    }))
}
