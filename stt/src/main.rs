//! `hermit-stt`: Hermit's speech-to-text worker.
//!
//! A process of its own, because whisper.cpp and llama.cpp each vendor an
//! incompatible ggml that must never be linked into one binary. The daemon
//! starts it once (the model is loaded once) and talks to it over its
//! standard input and output, one JSON object a line:
//!
//! ```text
//! → {"ready": true, "model": "…", "multilingual": true, "threads": 2}
//! ← {"id": 1, "path": "/tmp/voice.ogg", "language": "auto"}
//! → {"id": 1, "ok": true, "text": "…", "language": "en", "segments": [...],
//!    "audio_seconds": 3.1, "decode_ms": 12, "transcribe_ms": 950}
//! → {"id": 2, "ok": false, "error": "…"}
//! ```
//!
//! It decodes Ogg/Opus (what Matrix clients send for voice messages),
//! Ogg/Vorbis, WAV, FLAC, MP3 and M4A/AAC, mixes to mono, resamples to
//! 16 kHz and refuses audio over the limits instead of cutting it.
//! `hermit-stt --model M FILE` transcribes one file and prints the answer.

mod audio;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

struct Options {
    model: PathBuf,
    threads: i32,
    language: String,
    limits: audio::Limits,
    file: Option<PathBuf>,
}

const USAGE: &str = "usage: hermit-stt --model MODEL.bin [--threads N] [--language auto|en|fr|…] \
[--max-seconds S] [--max-bytes B] [FILE]";

fn options() -> Result<Options, String> {
    let mut o = Options {
        model: PathBuf::new(),
        threads: std::thread::available_parallelism().map_or(2, |n| n.get() as i32),
        language: "auto".into(),
        limits: audio::Limits::default(),
        file: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--model" => o.model = value("--model")?.into(),
            "--threads" => {
                o.threads = value("--threads")?
                    .parse()
                    .map_err(|_| "--threads takes a number".to_string())?
            }
            "--language" => o.language = value("--language")?,
            "--max-seconds" => {
                o.limits.max_seconds = value("--max-seconds")?
                    .parse()
                    .map_err(|_| "--max-seconds takes a number".to_string())?
            }
            "--max-bytes" => {
                o.limits.max_bytes = value("--max-bytes")?
                    .parse()
                    .map_err(|_| "--max-bytes takes a number".to_string())?
            }
            "-h" | "--help" => return Err(USAGE.into()),
            f if !f.starts_with('-') && o.file.is_none() => o.file = Some(f.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if o.model.as_os_str().is_empty() {
        return Err(format!("--model is required\n{USAGE}"));
    }
    Ok(o)
}

#[derive(Deserialize)]
struct Request {
    id: u64,
    path: PathBuf,
    #[serde(default)]
    language: Option<String>,
}

#[derive(Serialize)]
struct Segment {
    start: f64,
    end: f64,
    text: String,
}

#[derive(Serialize)]
struct Transcript {
    text: String,
    language: String,
    segments: Vec<Segment>,
    audio_seconds: f64,
    decode_ms: u64,
    transcribe_ms: u64,
}

struct Worker {
    ctx: WhisperContext,
    threads: i32,
    language: String,
    limits: audio::Limits,
}

impl Worker {
    fn transcribe(
        &self,
        path: &std::path::Path,
        language: Option<&str>,
    ) -> Result<Transcript, String> {
        let started = Instant::now();
        let samples = audio::decode_file(path, &self.limits)?;
        let decode_ms = started.elapsed().as_millis() as u64;
        let audio_seconds = samples.len() as f64 / audio::RATE as f64;
        let started = Instant::now();
        let mut state = self
            .ctx
            .create_state()
            .map_err(|e| format!("whisper: cannot create a state: {e}"))?;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads);
        let lang = language.unwrap_or(&self.language);
        if lang == "auto" || lang.is_empty() {
            params.set_language(Some("auto"));
        } else {
            params.set_language(Some(lang));
        }
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        state
            .full(params, &samples)
            .map_err(|e| format!("whisper: transcription failed: {e}"))?;
        let language = whisper_rs::get_lang_str(state.full_lang_id_from_state())
            .unwrap_or("?")
            .to_string();
        let mut segments = Vec::new();
        for i in 0..state.full_n_segments() {
            let Some(s) = state.get_segment(i) else {
                continue;
            };
            let text = s
                .to_str_lossy()
                .map(|t| t.trim().to_string())
                .unwrap_or_default();
            if text.is_empty() {
                continue;
            }
            segments.push(Segment {
                // whisper.cpp's timestamps are in hundredths of a second.
                start: s.start_timestamp() as f64 / 100.0,
                end: s.end_timestamp() as f64 / 100.0,
                text,
            });
        }
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Transcript {
            text,
            language,
            segments,
            audio_seconds,
            decode_ms,
            transcribe_ms: started.elapsed().as_millis() as u64,
        })
    }
}

fn print(v: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("hermit-stt: {e}");
            std::process::exit(2);
        }
    };
    // whisper.cpp's and ggml's logs go nowhere: stdout is the protocol.
    whisper_rs::install_logging_hooks();
    let ctx = match WhisperContext::new_with_params(&o.model, WhisperContextParameters::default()) {
        Ok(c) => c,
        Err(e) => {
            let error = format!("cannot load the speech model {}: {e}", o.model.display());
            print(serde_json::json!({"ready": false, "error": error}));
            eprintln!("hermit-stt: {error}");
            std::process::exit(2);
        }
    };
    let worker = Worker {
        threads: o.threads,
        language: o.language.clone(),
        limits: o.limits,
        ctx,
    };
    if let Some(file) = &o.file {
        match worker.transcribe(file, None) {
            Ok(t) => print(serde_json::to_value(&t).unwrap_or_default()),
            Err(e) => {
                eprintln!("hermit-stt: {}: {e}", file.display());
                std::process::exit(1);
            }
        }
        return;
    }
    print(serde_json::json!({
        "ready": true,
        "model": o.model.display().to_string(),
        "multilingual": worker.ctx.is_multilingual(),
        "threads": o.threads,
    }));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Err(e) => {
                serde_json::json!({"id": null, "ok": false, "error": format!("bad request: {e}")})
            }
            Ok(r) => match worker.transcribe(&r.path, r.language.as_deref()) {
                Ok(t) => {
                    let mut v = serde_json::to_value(&t).unwrap_or_default();
                    v["id"] = r.id.into();
                    v["ok"] = true.into();
                    v
                }
                Err(error) => serde_json::json!({"id": r.id, "ok": false, "error": error}),
            },
        };
        print(reply);
    }
}
