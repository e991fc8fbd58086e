//! `hermit chat`: a conversation in the terminal, through the running
//! daemon when there is one, else with an agent of its own (the model, the
//! trust layer, memory and, when they are on, the tools).

use std::sync::Arc;
use std::time::Duration;

use hermit::agent::Agent;
use hermit::channels::terminal::{self, Backend};
use hermit::trust::Trust;

use super::{Global, ensure_data_dir, open_memory, runtime, start_engine, toolbox_with};

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
    let memory = open_memory(&config)?;
    // The trust layer even with the tools off: the stop switch halts this
    // chat's turns too, as it does the daemon's.
    ensure_data_dir(&config)?;
    let trust = Arc::new(Trust::open(&config)?);
    let toolbox = if config.agent.tools {
        Some(toolbox_with(&config, trust.clone(), memory.clone())?)
    } else {
        None
    };
    let mut agent = Agent::new(
        engine,
        toolbox,
        config.agent.max_tool_steps,
        Duration::from_secs(config.agent.turn_timeout_seconds),
    )?
    .with_trust(trust);
    if let Some(m) = memory {
        m.start_worker();
        agent = agent.with_memory(m);
    }
    runtime()?.block_on(terminal::run(Backend::Local {
        agent,
        system_prompt: system,
    }))
}
