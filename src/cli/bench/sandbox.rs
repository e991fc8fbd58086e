//! `hermit bench sandbox` (scripts/bench-sandbox): the cost of starting a
//! sandboxed `true` against a plain fork+exec of `true`.

use serde::Serialize;

use super::median;
use crate::cli::{Global, toolbox};

pub fn run(global: &Global, json: bool, runs: usize) -> anyhow::Result<()> {
    let config = global.load_config()?;
    let tb = toolbox(&config)?;
    let r = measure(&tb.ctx.sandbox, &tb.ctx.sandbox_policy(), runs)?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "{} runs: plain fork+exec of true {:.2} ms, sandboxed {:.2} ms (median); sandbox adds {:.2} ms ({:.1}x)",
            r.runs, r.plain_median_ms, r.sandboxed_median_ms, r.added_ms, r.ratio
        );
    }
    Ok(())
}

/// `hermit bench sandbox`: the cost of starting a sandboxed `true` against a
/// plain fork+exec of `true`.
#[derive(Debug, Serialize)]
struct SandboxBench {
    pub runs: usize,
    pub plain_median_ms: f64,
    pub sandboxed_median_ms: f64,
    pub added_ms: f64,
    pub ratio: f64,
}

fn measure(
    sandbox: &hermit::sandbox::Sandbox,
    policy: &hermit::sandbox::SandboxPolicy,
    runs: usize,
) -> Result<SandboxBench, hermit::sandbox::SandboxError> {
    let runs = runs.max(1);
    let argv = ["/bin/true".to_string()];
    let mut plain = Vec::with_capacity(runs);
    let mut boxed = Vec::with_capacity(runs);
    // Interleaved, so machine noise hits both alike.
    for _ in 0..runs {
        let t = std::time::Instant::now();
        std::process::Command::new("/bin/true").status()?;
        plain.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = std::time::Instant::now();
        let out = sandbox.run(policy, &argv)?;
        boxed.push(t.elapsed().as_secs_f64() * 1000.0);
        if out.exit_code != 0 {
            return Err(hermit::sandbox::SandboxError::Setup(format!(
                "sandboxed true exited {}: {}",
                out.exit_code, out.stderr
            )));
        }
    }
    let p = median(&mut plain);
    let b = median(&mut boxed);
    Ok(SandboxBench {
        runs,
        plain_median_ms: p,
        sandboxed_median_ms: b,
        added_ms: b - p,
        ratio: b / p.max(1e-9),
    })
}
