//! Sentence embeddings: all-MiniLM-L6-v2 (BERT, 6 layers, 384 dimensions)
//! run with candle on the CPU, mean-pooled over the real tokens (padding
//! masked out) and L2-normalised, so a dot product is the cosine.
//!
//! Called only from blocking threads (the memory worker, `spawn_blocking`
//! for a query): a batch takes tens of milliseconds.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// Dimensions of a vector.
pub const DIMS: usize = 384;

/// Longest input, in tokens (the model was trained on 256).
const MAX_TOKENS: usize = 256;

pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model in {dir}: {message}")]
    Load { dir: String, message: String },
    #[error("embedding failed: {0}")]
    Run(String),
}

fn run_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Run(e.to_string())
}

impl Embedder {
    /// Loads `model.safetensors`, `config.json` and `tokenizer.json` from
    /// `dir` (the model cache's `all-MiniLM-L6-v2/`).
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let load = |message: String| EmbedError::Load {
            dir: dir.display().to_string(),
            message,
        };
        let config = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| load(format!("config.json: {e}")))?;
        let config: Config =
            serde_json::from_str(&config).map_err(|e| load(format!("config.json: {e}")))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| load(format!("tokenizer.json: {e}")))?;
        // The file pads every input to 128 tokens: pad a batch to its
        // longest instead (the pooling masks the padding out).
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| load(format!("tokenizer.json: {e}")))?;
        let device = Device::Cpu;
        let weights = dir.join("model.safetensors");
        // SAFETY: the file is memory-mapped read-only; it lives in the model
        // cache, verified against models.toml, and is not modified while
        // Hermit runs.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DTYPE, &device) }
            .map_err(|e| load(format!("model.safetensors: {e}")))?;
        let model = BertModel::load(vb, &config).map_err(|e| load(e.to_string()))?;
        Ok(Self {
            model,
            tokenizer,
            device,
        })
    }

    /// One normalised vector per text, in order. Texts are embedded in
    /// small batches of similar length: a batch is padded to its longest
    /// text, and padding is wasted work.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        const BATCH: usize = 16;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            for (&i, v) in chunk.iter().zip(self.embed_batch(&batch)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(run_err)?;
        let ids = encodings
            .iter()
            .map(|e| Tensor::new(e.get_ids(), &self.device))
            .collect::<Result<Vec<_>, _>>()
            .map_err(run_err)?;
        let mask = encodings
            .iter()
            .map(|e| Tensor::new(e.get_attention_mask(), &self.device))
            .collect::<Result<Vec<_>, _>>()
            .map_err(run_err)?;
        let ids = Tensor::stack(&ids, 0).map_err(run_err)?;
        let mask = Tensor::stack(&mask, 0).map_err(run_err)?;
        let types = ids.zeros_like().map_err(run_err)?;
        let out = self
            .model
            .forward(&ids, &types, Some(&mask))
            .map_err(run_err)?;
        // Mean over the real tokens, then L2 normalisation.
        let pooled = (|| {
            let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let sum = out.broadcast_mul(&m)?.sum(1)?;
            let count = m.sum(1)?.clamp(1e-9, f64::MAX)?;
            let mean = sum.broadcast_div(&count)?;
            let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            mean.broadcast_div(&norm)?.to_vec2::<f32>()
        })()
        .map_err(run_err)?;
        Ok(pooled)
    }

    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        Ok(self.embed(&[text])?.pop().unwrap_or_default())
    }
}

/// A vector as stored in hermit.db: little-endian f32.
pub(crate) fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn from_blob(b: &[u8]) -> Option<Vec<f32>> {
    if b.len() != DIMS * 4 {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Dot product of two vectors of [`DIMS`] (the cosine, both being
/// normalised), written so the compiler vectorises it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum()
}
