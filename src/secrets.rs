//! Secrets: generated once, kept in `<data_dir>/secrets/`, readable only by
//! the daemon's user.
//!
//! The directory is mode 0700 and every file 0600, written with `O_EXCL` so
//! a secret is never silently replaced. Secrets are generated here (256 bits
//! from the kernel's random source), never typed into a configuration file,
//! never placed in a prompt and never logged: callers get them as
//! [`Secret`], whose `Debug` and `Display` print a placeholder.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The names of the secrets Hermit generates.
pub mod names {
    /// Synapse's shared registration secret (creates accounts).
    pub(crate) const REGISTRATION: &str = "synapse-registration";
    /// Synapse's macaroon and form secrets.
    pub(crate) const MACAROON: &str = "synapse-macaroon";
    pub(crate) const FORM: &str = "synapse-form";
    /// The bot account's password.
    pub const BOT_PASSWORD: &str = "bot-password";
    /// The owner account's password (the owner reads it once, logs in, and
    /// should change it from their client).
    pub const OWNER_PASSWORD: &str = "owner-password";
    /// Encrypts matrix-sdk's state and crypto stores.
    pub const STORE_PASSPHRASE: &str = "matrix-store-passphrase";
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot use the secrets directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is readable by other users (mode {mode:o}); secrets must be 0600 in a 0700 directory. Fix with: chmod 700 {dir} && chmod 600 {dir}/*"
    )]
    Exposed {
        path: PathBuf,
        dir: String,
        mode: u32,
    },
    #[error("the secret {0} is empty or not text")]
    Corrupt(PathBuf),
}

/// A secret value. Printing it shows a placeholder; use [`Secret::expose`]
/// where the value itself is needed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The secrets directory.
#[derive(Debug, Clone)]
pub struct Secrets {
    dir: PathBuf,
}

impl Secrets {
    /// Opens `<data_dir>/secrets`, creating it (0700) if needed, and checks
    /// that it is not open to other users.
    pub fn open(data_dir: &Path) -> Result<Self, SecretsError> {
        let dir = data_dir.join("secrets");
        let io = |source| SecretsError::Io {
            path: dir.clone(),
            source,
        };
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(io)?;
        }
        let mode = std::fs::metadata(&dir).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretsError::Exposed {
                path: dir.clone(),
                dir: dir.display().to_string(),
                mode,
            });
        }
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The secret `name`, if it was generated.
    pub fn get(&self, name: &str) -> Result<Option<Secret>, SecretsError> {
        let path = self.path(name);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(SecretsError::Io { path, source }),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretsError::Exposed {
                path,
                dir: self.dir.display().to_string(),
                mode,
            });
        }
        let text =
            std::fs::read_to_string(&path).map_err(|_| SecretsError::Corrupt(path.clone()))?;
        let value = text.trim();
        if value.is_empty() {
            return Err(SecretsError::Corrupt(path));
        }
        Ok(Some(Secret(value.to_string())))
    }

    /// Every readable secret in the store, by name (for the redaction
    /// filter); a file that cannot be used is skipped with a warning.
    pub fn all(&self) -> Result<Vec<(String, Secret)>, SecretsError> {
        let rd = std::fs::read_dir(&self.dir).map_err(|source| SecretsError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || !entry.path().is_file() {
                continue;
            }
            // One unreadable or exposed file must not stop the others
            // from being known (and redacted); it is reported.
            match self.get(&name) {
                Ok(Some(s)) => out.push((name, s)),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "a secret is skipped"),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Stores a secret given by the owner (an integration's API token),
    /// replacing an earlier value of that name. Names are plain words.
    pub fn set(&self, name: &str, value: &str) -> Result<(), SecretsError> {
        let path = self.path(name);
        let value = value.trim();
        if value.is_empty() {
            return Err(SecretsError::Corrupt(path));
        }
        write_private(&path, &format!("{value}\n")).map_err(|source| SecretsError::Io {
            path: path.clone(),
            source,
        })
    }

    /// The secret `name`, generated (and written, 0600) the first time.
    /// Returns it and whether it was created now.
    pub(crate) fn get_or_create(&self, name: &str) -> Result<(Secret, bool), SecretsError> {
        if let Some(s) = self.get(name)? {
            return Ok((s, false));
        }
        let value = random_token()?;
        let path = self.path(name);
        let io = |source| SecretsError::Io {
            path: path.clone(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        f.write_all(format!("{value}\n").as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok((Secret(value), true))
    }
}

/// Writes a file only its owner can read, atomically: a hidden temporary
/// file (0600, created new) in the same directory, synced, then renamed.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// `n` random bytes from the kernel.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], SecretsError> {
    let mut bytes = [0u8; N];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: writing into our own buffer, within its length.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(SecretsError::Io {
                path: PathBuf::from("getrandom"),
                source: err,
            });
        }
        filled += n as usize;
    }
    Ok(bytes)
}

/// 256 random bits from the kernel, as 43 characters of URL-safe base64
/// (no padding): safe in YAML, URLs and passwords.
fn random_token() -> Result<String, SecretsError> {
    let bytes = random_bytes::<32>()?;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(43);
    let mut acc = 0u32;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_private_stable_and_not_printed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Secrets::open(dir.path()).unwrap();
        let mode = std::fs::metadata(s.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let (a, created) = s.get_or_create("x").unwrap();
        assert!(created);
        assert_eq!(a.expose().len(), 43);
        let mode = std::fs::metadata(s.path("x")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (b, created) = s.get_or_create("x").unwrap();
        assert!(!created);
        assert_eq!(a, b);
        let (c, _) = s.get_or_create("y").unwrap();
        assert_ne!(a, c);
        assert!(!format!("{a} {a:?}").contains(a.expose()));
        std::fs::set_permissions(s.path("x"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(s.get("x"), Err(SecretsError::Exposed { .. })));
    }
}
