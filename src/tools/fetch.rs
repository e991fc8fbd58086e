//! `fetch`: HTTP(S) GET of a page, reduced to text.
//!
//! Off by default. When on, only hosts on `fetch.allow_hosts` may be
//! fetched (exact names, or `*.example.org` for subdomains). Loopback,
//! link-local, private and other special addresses are refused unless the
//! host is also on `fetch.allow_private`; the check is made on the addresses
//! the connection actually uses (the resolver is ours, so DNS cannot answer
//! one thing to the check and another to the connection), and again on every
//! redirect. Size and time are capped. What comes back is untrusted text.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::{Value, json};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use super::{Effect, Tool, ToolContext, ToolError, ToolOutput, ToolSpec, arg_str};

pub use crate::config::tools::FetchConfig;

pub(crate) struct Fetch;

fn refused(reason: impl Into<String>) -> ToolError {
    ToolError::Refused {
        tool: "fetch".into(),
        reason: reason.into(),
    }
}

fn failed(message: impl std::fmt::Display) -> ToolError {
    ToolError::failed("fetch", message)
}

use crate::vocab::host_matches;

/// Addresses nobody should reach through a fetched URL by default.
pub(crate) fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_special(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
        }
    }
}

/// Resolves like the default resolver, then drops the addresses the host
/// may not reach; no address left is an error.
#[derive(Debug)]
struct CheckedResolver {
    allow_private: bool,
}

impl Resolver for CheckedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let all = DefaultResolver::default().resolve(uri, config, timeout)?;
        let mut kept = self.empty();
        for addr in all.iter().copied() {
            if self.allow_private || !is_special(addr.ip()) {
                kept.push(addr);
            }
        }
        if kept.is_empty() {
            let first: Option<SocketAddr> = all.iter().copied().next();
            return Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "refused: {} resolves to a loopback, link-local or private address ({}) and is not in fetch.allow_private",
                    uri.host().unwrap_or("?"),
                    first.map(|a| a.ip().to_string()).unwrap_or_default()
                ),
            )));
        }
        Ok(kept)
    }
}

impl Tool for Fetch {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "fetch",
            description: "Fetch a web page (HTTP GET) from a host the owner allowed, as text.",
            parameters: json!({
                "type": "object",
                "properties": {"url": {"type": "string", "description": "http:// or https:// URL", "maxLength": 2048}},
                "required": ["url"],
                "additionalProperties": false
            }),
        }
    }

    fn effects(&self, _: &Value) -> Vec<Effect> {
        vec![Effect::Network, Effect::Read]
    }

    fn output_origin(&self, args: &Value) -> Option<crate::vocab::Origin> {
        Some(crate::vocab::Origin::Page(
            arg_str(args, "url").unwrap_or_default().trim().to_string(),
        ))
    }

    fn run_in(
        &self,
        ctx: &ToolContext,
        args: &Value,
        _: &super::CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let cfg = &ctx.fetch;
        if !cfg.enabled {
            return Err(refused(
                "fetching is off; the owner can enable it with [fetch] enabled = true and allow_hosts",
            ));
        }
        let mut url = arg_str(args, "url").unwrap_or_default().trim().to_string();
        for hop in 0..=cfg.max_redirects {
            let uri: ureq::http::Uri = url
                .parse()
                .map_err(|e| failed(format!("{url} is not a URL: {e}")))?;
            match uri.scheme_str() {
                Some("http") | Some("https") => {}
                _ => return Err(refused(format!("{url}: only http and https URLs"))),
            }
            let host = uri.host().unwrap_or_default().to_ascii_lowercase();
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            if !cfg.allow_hosts.iter().any(|p| host_matches(&host, p)) {
                return Err(refused(format!(
                    "{host} is not in fetch.allow_hosts{}",
                    if hop > 0 {
                        " (reached by a redirect)"
                    } else {
                        ""
                    }
                )));
            }
            let allow_private = cfg.allow_private.iter().any(|p| host_matches(&host, p));
            let config = ureq::Agent::config_builder()
                .max_redirects(0)
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(cfg.timeout_seconds.max(1))))
                .user_agent("hermit-fetch")
                .build();
            let agent = ureq::Agent::with_parts(
                config,
                DefaultConnector::new(),
                CheckedResolver { allow_private },
            );
            let resp = agent.get(&url).call().map_err(|e| match e {
                ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
                    refused(io.to_string())
                }
                e => failed(format!("{url}: {e}")),
            })?;
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| failed(format!("{url}: redirect without a location")))?;
                url = join_url(&uri, location);
                continue;
            }
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let mut body = Vec::new();
            StopAware(resp.into_body().into_reader())
                .take(cfg.max_bytes + 1)
                .read_to_end(&mut body)
                .map_err(|e| failed(format!("{url}: {e}")))?;
            let truncated = body.len() as u64 > cfg.max_bytes;
            body.truncate(cfg.max_bytes as usize);
            let raw = String::from_utf8_lossy(&body);
            let text = if content_type.contains("html") {
                html_to_text(&raw)
            } else {
                raw.into_owned()
            };
            let mut content = format!("{url} ({}, {content_type})\n\n{text}", status.as_u16());
            if truncated {
                content.push_str(&format!("\n[… cut at {} bytes]", cfg.max_bytes));
            }
            return Ok(ToolOutput {
                own: false,
                ok: status.is_success(),
                content,
            });
        }
        Err(failed(format!("more than {} redirects", cfg.max_redirects)))
    }
}

/// Resolves a redirect's `Location` against the URL it came from.
fn join_url(base: &ureq::http::Uri, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = base.path();
    let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
    format!("{scheme}://{authority}{dir}{location}")
}

/// HTML reduced to readable text: no tags, no scripts or styles, entities
/// decoded, whitespace collapsed, block elements on their own lines.
pub(crate) fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[..gt].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = &after[gt + 1..];
        if (name == "script" || name == "style") && !tag.starts_with('/') {
            let close = format!("</{name}");
            match rest.to_ascii_lowercase().find(&close) {
                Some(i) => {
                    rest = &rest[i..];
                    if let Some(g) = rest.find('>') {
                        rest = &rest[g + 1..];
                    }
                }
                None => rest = "",
            }
            continue;
        }
        if matches!(
            name.as_str(),
            "p" | "br"
                | "div"
                | "li"
                | "tr"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "title"
                | "section"
                | "article"
        ) {
            out.push('\n');
        }
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    decoded
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A response body that ends with an error as soon as Hermit is stopped
/// (`!stop`): the fetch runs in the daemon's process, where there is no
/// process to kill.
struct StopAware<R>(R);

impl<R: std::io::Read> std::io::Read for StopAware<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if crate::sandbox::is_halted() {
            return Err(std::io::Error::other("stopped by the owner (!stop)"));
        }
        self.0.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_special(a.parse().unwrap()), "{a}");
        }
        for a in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(!is_special(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn host_patterns() {
        assert!(host_matches("example.org", "example.org"));
        assert!(host_matches("docs.example.org", "*.example.org"));
        assert!(!host_matches("example.org.evil.com", "example.org"));
        assert!(!host_matches("evilexample.org", "*.example.org"));
    }

    #[test]
    fn html_is_reduced_to_text() {
        let t = html_to_text(
            "<html><head><style>p{}</style><script>alert(1)</script><title>T</title></head><body><p>Hello &amp; <b>welcome</b></p><p>Bye</p></body></html>",
        );
        assert_eq!(t, "T\nHello & welcome\nBye");
    }

    #[test]
    fn redirects_are_joined() {
        let base: ureq::http::Uri = "https://a.org/x/y.html".parse().unwrap();
        assert_eq!(join_url(&base, "/z"), "https://a.org/z");
        assert_eq!(join_url(&base, "w.html"), "https://a.org/x/w.html");
        assert_eq!(join_url(&base, "http://b.org/"), "http://b.org/");
    }
}
