//! Audio in, 16 kHz mono f32 out: what whisper.cpp takes.
//!
//! Containers and codecs come from Symphonia (Ogg, Matroska/WebM, WAV,
//! MP4/M4A; Vorbis, FLAC, MP3, AAC, PCM), Opus from libopus through
//! symphonia-adapter-libopus. Channels are averaged; the sample rate is
//! converted with a windowed-sinc (band-limited) interpolator. Every
//! failure is a sentence for the person who sent the audio.

use std::path::Path;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::errors::Error;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

/// whisper.cpp's sample rate.
pub const RATE: u32 = 16_000;

/// What is refused rather than cut.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_seconds: f64,
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_seconds: 600.0,
            max_bytes: 25 * 1024 * 1024,
        }
    }
}

fn codecs() -> &'static CodecRegistry {
    static REGISTRY: std::sync::OnceLock<CodecRegistry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut r = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut r);
        r.register_audio_decoder::<symphonia_adapter_libopus::OpusDecoder>();
        r
    })
}

/// Decodes `path` to 16 kHz mono, within `limits`.
pub fn decode_file(path: &Path, limits: &Limits) -> Result<Vec<f32>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the audio file: {e}"))?;
    if meta.len() == 0 {
        return Err("the audio file is empty".into());
    }
    if meta.len() > limits.max_bytes {
        return Err(format!(
            "the audio is too large: {:.1} MB (the limit is {:.0} MB)",
            meta.len() as f64 / 1048576.0,
            limits.max_bytes as f64 / 1048576.0
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read the audio file: {e}"))?;
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let (samples, rate) = decode(
        MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default()),
        &hint,
        limits,
    )?;
    if samples.is_empty() {
        return Err("the clip holds no audio (it is empty)".into());
    }
    Ok(resample(&samples, rate, RATE))
}

/// Decodes the first audio track to mono at its own rate.
fn decode(
    mss: MediaSourceStream<'_>,
    hint: &Hint,
    limits: &Limits,
) -> Result<(Vec<f32>, u32), String> {
    let mut format = symphonia::default::get_probe()
        .probe(
            hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| match e {
            Error::Unsupported(_) => {
                "this is not audio I can read (Ogg/Opus, WAV, FLAC, MP3, M4A/AAC, Ogg/Vorbis, WebM)"
                    .to_string()
            }
            Error::IoError(_) => "the audio file is truncated or damaged".to_string(),
            other => format!("this is not audio I can read: {other}"),
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or("the file has no audio track")?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or("the file has no audio track")?
        .clone();
    let mut decoder = codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| format!("this audio codec is not supported: {e}"))?;
    let mut rate = params.sample_rate.unwrap_or(0);
    let mut mono: Vec<f32> = Vec::new();
    let mut frame: Vec<f32> = Vec::new();
    let mut decoded_any = false;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                // Some containers end this way; a file cut short does too.
                if decoded_any && is_complete(format.as_ref()) {
                    break;
                }
                return Err(
                    "the audio file is truncated or damaged (it ends in the middle)".into(),
                );
            }
            Err(Error::ResetRequired) => {
                return Err("the audio stream changes format midway; I cannot read it".into());
            }
            Err(e) => return Err(format!("the audio file is damaged: {e}")),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(b) => b,
            // A damaged packet: skipped, as players do.
            Err(Error::DecodeError(_)) => continue,
            Err(e) => return Err(format!("the audio cannot be decoded: {e}")),
        };
        decoded_any = true;
        let spec = buf.spec().clone();
        rate = spec.rate();
        let channels = spec.channels().count().max(1);
        buf.copy_to_vec_interleaved(&mut frame);
        mono.extend(
            frame
                .chunks(channels)
                .map(|c| c.iter().sum::<f32>() / channels as f32),
        );
        if rate > 0 && mono.len() as f64 / rate as f64 > limits.max_seconds {
            return Err(format!(
                "the audio is too long: more than {} (the limit is {}); send a shorter clip",
                minutes(mono.len() as f64 / rate as f64),
                minutes(limits.max_seconds)
            ));
        }
    }
    if rate == 0 {
        return Err("the audio has no sample rate".into());
    }
    Ok((mono, rate))
}

/// Whether a reader that hit the end of its input had read all its
/// track said it would (its frame count, when the container tells it).
fn is_complete(format: &(dyn symphonia::core::formats::FormatReader + '_)) -> bool {
    format.tracks().iter().all(|t| t.num_frames.is_none())
}

fn minutes(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{:.0} min", seconds / 60.0)
    }
}

/// Band-limited resampling: each output sample is the input convolved with
/// a Hann-windowed sinc, its cut-off at the lower of the two Nyquist
/// frequencies (so 48 kHz → 16 kHz is low-passed at 8 kHz first).
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() {
        return input.to_vec();
    }
    const HALF: f64 = 16.0; // taps each side, at the cut-off's scale
    let ratio = from as f64 / to as f64;
    let cutoff = (1.0 / ratio).min(1.0);
    let width = HALF / cutoff;
    let n_out = ((input.len() as f64) / ratio).floor() as usize;
    let mut out = Vec::with_capacity(n_out);
    for j in 0..n_out {
        let t = j as f64 * ratio;
        let lo = (t - width).ceil().max(0.0) as usize;
        let hi = ((t + width).floor() as usize).min(input.len() - 1);
        let mut acc = 0.0f64;
        let mut norm = 0.0f64;
        for (k, &x) in input.iter().enumerate().take(hi + 1).skip(lo) {
            let d = t - k as f64;
            let w = 0.5 + 0.5 * (std::f64::consts::PI * d / width).cos();
            let arg = std::f64::consts::PI * d * cutoff;
            let sinc = if arg.abs() < 1e-9 {
                1.0
            } else {
                arg.sin() / arg
            };
            let c = sinc * w;
            acc += x as f64 * c;
            norm += c;
        }
        out.push(if norm.abs() > 1e-9 {
            (acc / norm) as f32
        } else {
            0.0
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, seconds: f64) -> Vec<f32> {
        (0..(rate as f64 * seconds) as usize)
            .map(|i| {
                (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() as f32 * 0.5
            })
            .collect()
    }

    fn rms(v: &[f32]) -> f64 {
        (v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    }

    /// A 16-bit PCM WAV file.
    fn wav(samples: &[f32], rate: u32, channels: u16) -> Vec<u8> {
        let data: Vec<u8> = samples
            .iter()
            .flat_map(|s| {
                std::iter::repeat_n(((s * 32767.0) as i16).to_le_bytes(), channels as usize)
            })
            .flatten()
            .collect();
        let mut w = Vec::new();
        w.extend(b"RIFF");
        w.extend((36 + data.len() as u32).to_le_bytes());
        w.extend(b"WAVEfmt ");
        w.extend(16u32.to_le_bytes());
        w.extend(1u16.to_le_bytes());
        w.extend(channels.to_le_bytes());
        w.extend(rate.to_le_bytes());
        w.extend((rate * 2 * channels as u32).to_le_bytes());
        w.extend((2 * channels).to_le_bytes());
        w.extend(16u16.to_le_bytes());
        w.extend(b"data");
        w.extend((data.len() as u32).to_le_bytes());
        w.extend(data);
        w
    }

    #[test]
    fn resampling_keeps_speech_and_removes_what_16_khz_cannot_hold() {
        // 1 kHz at 48 kHz: kept, same level, a third of the samples.
        let out = resample(&sine(1000.0, 48_000, 1.0), 48_000, 16_000);
        assert_eq!(out.len(), 16_000);
        assert!(
            (rms(&out[1000..15000]) - 0.3536).abs() < 0.01,
            "{}",
            rms(&out)
        );
        // 12 kHz at 48 kHz is above 16 kHz's Nyquist: filtered out.
        let out = resample(&sine(12_000.0, 48_000, 1.0), 48_000, 16_000);
        assert!(rms(&out[1000..15000]) < 0.01, "{}", rms(&out));
        // Upsampling 8 kHz → 16 kHz keeps a 440 Hz tone.
        let out = resample(&sine(440.0, 8_000, 1.0), 8_000, 16_000);
        assert_eq!(out.len(), 16_000);
        assert!((rms(&out[1000..15000]) - 0.3536).abs() < 0.01);
    }

    #[test]
    fn wav_is_decoded_to_16_khz_mono_and_bad_input_is_refused_in_words() {
        let dir = tempdir();
        let limits = Limits::default();
        let good = dir.join("a.wav");
        std::fs::write(&good, wav(&sine(440.0, 44_100, 2.0), 44_100, 2)).unwrap();
        let s = decode_file(&good, &limits).unwrap();
        assert!((s.len() as i64 - 32_000).abs() <= 1, "{}", s.len());
        assert!((rms(&s[1000..31000]) - 0.3536).abs() < 0.01);

        let err = |name: &str, bytes: &[u8], limits: &Limits| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            decode_file(&p, limits).unwrap_err()
        };
        assert!(err("empty.ogg", b"", &limits).contains("empty"));
        let e = err(
            "text.ogg",
            b"this is not audio at all, just some words in a file",
            &limits,
        );
        assert!(e.contains("not audio"), "{e}");
        let full = wav(&sine(440.0, 16_000, 1.0), 16_000, 1);
        let e = err("cut.wav", &full[..full.len() / 2], &limits);
        assert!(e.contains("truncated"), "{e}");
        let e = err("silent.wav", &wav(&[], 16_000, 1), &limits);
        assert!(e.contains("no audio") || e.contains("empty"), "{e}");
        let short = Limits {
            max_seconds: 0.5,
            ..limits
        };
        let e = err("long.wav", &full, &short);
        assert!(e.contains("too long"), "{e}");
        let small = Limits {
            max_bytes: 1000,
            ..limits
        };
        let e = err("big.wav", &full, &small);
        assert!(e.contains("too large"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempdir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "hermit-stt-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
