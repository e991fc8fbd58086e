//! The `fetch` tool against a real HTTP server on loopback: off by default,
//! allow-listed hosts only, special addresses refused after DNS and on
//! redirects, HTML reduced to text, size capped.

use crate::common::*;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

/// A tiny HTTP server on 127.0.0.1, answering by path, for as long as the
/// test runs.
fn serve() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Drain the headers.
            let mut h = String::new();
            while reader.read_line(&mut h).is_ok() && h != "\r\n" && !h.is_empty() {
                h.clear();
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (status, extra, ctype, body) = match path.as_str() {
                "/page" => (
                    "200 OK",
                    String::new(),
                    "text/html",
                    "<html><body><p>Hello <b>world</b></p><script>secret()</script></body></html>"
                        .to_string(),
                ),
                "/redirect-out" => (
                    "302 Found",
                    "Location: http://elsewhere.example/\r\n".to_string(),
                    "text/plain",
                    String::new(),
                ),
                "/redirect-localhost" => (
                    "302 Found",
                    format!("Location: http://localhost:{port}/page\r\n"),
                    "text/plain",
                    String::new(),
                ),
                "/big" => ("200 OK", String::new(), "text/plain", "x".repeat(10_000)),
                _ => (
                    "404 Not Found",
                    String::new(),
                    "text/plain",
                    "nothing".to_string(),
                ),
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\n{extra}Content-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn fetch(config: &str, url: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hermit.toml");
    std::fs::write(&path, config).unwrap();
    hermit()
        .env("HERMIT_DATA", dir.path())
        .arg("--config")
        .arg(&path)
        .args([
            "tools",
            "run",
            "fetch",
            "--args",
            &serde_json::json!({ "url": url }).to_string(),
        ])
        .output()
        .unwrap()
}

fn refused(out: &std::process::Output, needle: &str) {
    assert!(!out.status.success(), "{}", stdout(out));
    assert!(stderr(out).contains(needle), "{}", stderr(out));
    assert!(!stdout(out).contains("Hello"));
}

#[test]
fn fetch_is_off_by_default() {
    let port = serve();
    let out = fetch("", &format!("http://127.0.0.1:{port}/page"));
    refused(&out, "network, which is off");
}

#[test]
fn a_host_not_on_the_allow_list_is_refused() {
    let port = serve();
    let out = fetch(
        "[fetch]\nenabled = true\nallow_hosts = [\"example.org\"]\n",
        &format!("http://127.0.0.1:{port}/page"),
    );
    refused(&out, "not in fetch.allow_hosts");
}

#[test]
fn loopback_is_refused_unless_listed_as_private() {
    let port = serve();
    let out = fetch(
        "[fetch]\nenabled = true\nallow_hosts = [\"127.0.0.1\"]\n",
        &format!("http://127.0.0.1:{port}/page"),
    );
    refused(&out, "loopback, link-local or private");
}

#[test]
fn an_allowed_page_comes_back_as_text() {
    let port = serve();
    let out = fetch(
        "[fetch]\nenabled = true\nallow_hosts = [\"127.0.0.1\"]\nallow_private = [\"127.0.0.1\"]\n",
        &format!("http://127.0.0.1:{port}/page"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Hello world"), "{text}");
    assert!(
        !text.contains("<b>") && !text.contains("secret()"),
        "{text}"
    );
}

#[test]
fn redirects_are_checked_like_the_first_url() {
    let port = serve();
    let cfg = "[fetch]\nenabled = true\nallow_hosts = [\"127.0.0.1\", \"localhost\"]\nallow_private = [\"127.0.0.1\"]\n";
    let out = fetch(cfg, &format!("http://127.0.0.1:{port}/redirect-out"));
    refused(&out, "reached by a redirect");
    // localhost is allowed as a host, but not to resolve to loopback.
    let out = fetch(cfg, &format!("http://127.0.0.1:{port}/redirect-localhost"));
    refused(&out, "loopback, link-local or private");
}

#[test]
fn responses_are_capped() {
    let port = serve();
    let out = fetch(
        "[fetch]\nenabled = true\nallow_hosts = [\"127.0.0.1\"]\nallow_private = [\"127.0.0.1\"]\nmax_bytes = 1000\n",
        &format!("http://127.0.0.1:{port}/big"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("[… cut at 1000 bytes]"));
    let text = stdout(&out);
    assert!(text.contains(&"x".repeat(1000)) && !text.contains(&"x".repeat(1001)));
}
