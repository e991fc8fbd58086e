//! Voice: the speech worker is a binary of its own (whisper.cpp and
//! llama.cpp never meet), and `hermit transcribe` hears real speech
//! synthesised by espeak-ng and encoded to Ogg/Opus by opusenc.

use crate::common;
use std::process::Command;

use crate::common::{DataDir, SENTENCE, stderr, stdout};

#[test]
fn hermit_transcribe_hears_synthesised_speech() {
    common::model_file("ggml-base.bin");
    let d = DataDir::new();
    let dir = d.root.path();
    let ogg = common::speech(dir, "voice", SENTENCE);
    let out = d.run(&["transcribe", ogg.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = t["text"].as_str().unwrap();
    let w = common::wer(SENTENCE, text);
    eprintln!("heard {text:?} (WER {w:.2}, language {})", t["language"]);
    assert!(w <= 0.3, "WER {w:.2}: {text:?}");
    assert_eq!(t["language"], "en", "detected by the multilingual model");
    let segments = t["segments"].as_array().unwrap();
    assert!(!segments.is_empty());
    let audio = t["audio_seconds"].as_f64().unwrap();
    assert!(audio > 2.0 && audio < 10.0, "{audio}");
    assert!(segments.last().unwrap()["end"].as_f64().unwrap() <= audio + 1.0);
    // The plain form prints the same text.
    let out = d.run(&["transcribe", ogg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), text);
}

/// The other formats people send: the same speech as FLAC, MP3 and
/// M4A/AAC (encoded by ffmpeg, installed by scripts/setup).
#[test]
fn flac_mp3_and_m4a_are_heard_too() {
    common::model_file("ggml-base.bin");
    let d = DataDir::new();
    let dir = d.root.path();
    common::speech(dir, "voice", SENTENCE);
    let wav = dir.join("voice.wav");
    for (ext, codec) in [
        ("flac", &["-c:a", "flac"][..]),
        ("mp3", &["-c:a", "libmp3lame", "-b:a", "64k"][..]),
        ("m4a", &["-c:a", "aac", "-b:a", "64k"][..]),
    ] {
        // (WAV itself: `hermit_transcribe_hears_synthesised_speech`.)
        let file = {
            let file = dir.join(format!("voice.{ext}"));
            let out = Command::new("ffmpeg")
                .args(["-loglevel", "error", "-y", "-i"])
                .arg(&wav)
                .args(codec)
                .arg(&file)
                .output()
                .expect("ffmpeg (scripts/setup installs it)");
            assert!(out.status.success(), "ffmpeg {ext}: {}", stderr(&out));
            file
        };
        let out = d.run(&["transcribe", file.to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{ext}: {}", stderr(&out));
        let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let text = t["text"].as_str().unwrap();
        let w = common::wer(SENTENCE, text);
        eprintln!("{ext}: heard {text:?} (WER {w:.2})");
        assert!(w <= 0.3, "{ext}: WER {w:.2}: {text:?}");
        let audio = t["audio_seconds"].as_f64().unwrap();
        assert!(audio > 2.0 && audio < 10.0, "{ext}: {audio} s");
    }
}
