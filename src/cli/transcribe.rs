//! `hermit transcribe FILE [--json]`: speech to text with the hermit-stt
//! worker, in its sandbox, as voice notes are transcribed.

use std::path::Path;

use anyhow::Context;

use super::{Global, runtime};

/// `hermit transcribe FILE [--json]`: the speech worker on one file.
pub fn run(global: &Global, file: &Path, json: bool) -> anyhow::Result<bool> {
    let config = global.load_config()?;
    let settings = hermit::voice::VoiceSettings::from_config(&config)?;
    let file =
        std::fs::canonicalize(file).with_context(|| format!("cannot read {}", file.display()))?;
    let voice = hermit::voice::Voice::new(settings);
    let rt = runtime()?;
    match rt.block_on(voice.transcribe(&file)) {
        Ok(t) => {
            if json {
                println!("{}", serde_json::to_string(&t)?);
            } else {
                println!("{}", t.text);
                eprintln!(
                    "({} s of audio, language {}, transcribed in {:.1} s)",
                    t.audio_seconds.round(),
                    t.language,
                    t.transcribe_ms as f64 / 1000.0
                );
            }
            Ok(true)
        }
        Err(hermit::voice::VoiceError::Audio(why)) => {
            eprintln!("{}: {why}", file.display());
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}
