//! Voice messages: downloaded (decrypted in encrypted rooms), transcribed
//! by the sandboxed speech worker ([`crate::voice`]), the transcript
//! quoted back (so the person sees what was understood) and kept (memory's
//! `transcripts`, and the journal's body, so that a restart rebuilds the
//! conversation from words), then answered as the person's words.

use matrix_sdk::Room;
use matrix_sdk::ruma::OwnedEventId;

use super::Bot;
use super::outgoing::txn_part;
use crate::proactive::Format;

impl Bot {
    /// A voice message: downloaded (decrypted in encrypted rooms),
    /// transcribed by the speech worker, the transcript quoted back and
    /// kept (hermit.db `transcripts`, and the journal's body, so a restart
    /// rebuilds the conversation from words). `Err`: what to tell the
    /// person instead.
    pub(super) async fn hear(
        &self,
        room: &Room,
        event_id: &OwnedEventId,
        sender: &str,
        json: &str,
    ) -> Result<String, String> {
        use matrix_sdk::media::{MediaFormat, MediaRequestParameters};
        let content: matrix_sdk::ruma::events::room::message::AudioMessageEventContent =
            serde_json::from_str(json).map_err(|e| {
                tracing::warn!(event = %event_id, error = %e, "a malformed audio message");
                "That audio message is malformed; I cannot play it.".to_string()
            })?;
        let Some(voice) = self.voice.get() else {
            return Err("I cannot listen to voice messages here: voice is off or its model is missing (`hermit doctor` says which). Please write to me.".into());
        };
        // Too large or too long by its own account: refused before a byte
        // is downloaded.
        let info = content.info.as_deref();
        if let Err(e) = voice.check_declared(
            info.and_then(|i| i.size).map(u64::from),
            info.and_then(|i| i.duration).map(|d| d.as_secs_f64()),
        ) {
            tracing::info!(event = %event_id, error = %e, "a voice message over the limits was not downloaded");
            return Err(format!("I could not listen to that voice message: {e}."));
        }
        let _ = room.typing_notice(true).await;
        let request = MediaRequestParameters {
            source: content.source.clone(),
            format: MediaFormat::File,
        };
        let bytes = self
            .client
            .media()
            .get_media_content(&request, false)
            .await
            .map_err(|e| {
                tracing::warn!(event = %event_id, error = %e, "cannot download a voice message");
                format!("I could not download that voice message ({e}).")
            })?;
        let ext = content
            .info
            .as_ref()
            .and_then(|i| i.mimetype.as_deref())
            .and_then(|m| m.split('/').nth(1))
            .map(|m| m.split(';').next().unwrap_or(m).trim().to_string())
            .filter(|m| m.chars().all(|c| c.is_ascii_alphanumeric()) && !m.is_empty())
            .unwrap_or_else(|| "audio".into());
        // The speech worker's inbox: the one place its sandbox lets it read.
        let dir = voice.inbox();
        {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir);
        }
        let path = dir.join(format!("{}.{ext}", txn_part(event_id)));
        std::fs::write(&path, &bytes)
            .map_err(|e| format!("I could not keep that voice message to read it ({e})."))?;
        let heard = voice.transcribe(&path).await;
        let _ = std::fs::remove_file(&path);
        let t = match heard {
            Ok(t) => t,
            Err(crate::voice::VoiceError::Audio(why)) => {
                tracing::info!(event = %event_id, %why, "a voice message could not be transcribed");
                return Err(format!("I could not listen to that voice message: {why}."));
            }
            Err(e) => {
                tracing::error!(event = %event_id, error = %e, "the speech worker failed");
                return Err(format!("I could not listen to that voice message: {e}."));
            }
        };
        let text = t.text.trim().to_string();
        if text.is_empty() {
            return Err("I heard no words in that voice message.".into());
        }
        tracing::info!(event = %event_id, language = %t.language, seconds = t.audio_seconds, ms = t.transcribe_ms, "voice message transcribed");
        let quoted = text
            .lines()
            .map(|l| format!("> {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        let shown = format!("🎙️ I heard:\n\n{quoted}");
        if let Err(e) = self
            .send_once(
                room,
                &shown,
                Format::Markdown,
                format!("hermit-transcript-{}", txn_part(event_id)),
            )
            .await
        {
            tracing::warn!(error = %e, "cannot post a transcript");
        }
        let principal = self
            .trust
            .principals
            .of(sender)
            .map(|p| crate::memory::principal_key(&p))
            .unwrap_or_else(|| sender.to_string());
        let kept = crate::db::open(&self.settings.db_path)
            .map_err(anyhow::Error::from)
            .and_then(|db| {
                crate::memory::record_transcript(
                    &db,
                    &crate::memory::NewTranscript {
                        principal: &principal,
                        room: Some(room.room_id().as_str()),
                        event_id: Some(event_id.as_str()),
                        language: &t.language,
                        body: &text,
                    },
                )?;
                Ok(())
            });
        if let Err(e) = kept {
            tracing::warn!(error = %e, "cannot keep a transcript");
        }
        let _ = self.journal.set_body(event_id.as_str(), &text);
        Ok(text)
    }
}
