//! Voice: the speech worker is a binary of its own (whisper.cpp and
//! llama.cpp never meet), and `hermit transcribe` hears real speech
//! synthesised by espeak-ng and encoded to Ogg/Opus by opusenc.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{DataDir, stderr, stdout};

fn stt_binary() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_hermit")).with_file_name("hermit-stt")
}

/// The defined symbols of a binary.
fn symbols(bin: &Path) -> String {
    let out = Command::new("nm")
        .args(["--defined-only", "-j"])
        .arg(bin)
        .output()
        .expect("nm runs");
    assert!(
        out.status.success(),
        "nm {}: {}",
        bin.display(),
        stderr(&out)
    );
    stdout(&out)
}

#[test]
fn whisper_and_llama_live_in_different_binaries() {
    let hermit = symbols(Path::new(env!("CARGO_BIN_EXE_hermit")));
    let stt = symbols(&stt_binary());
    let has = |syms: &str, name: &str| syms.lines().any(|l| l.trim() == name);
    assert!(has(&hermit, "llama_decode"), "hermit links llama.cpp");
    assert!(
        !has(&hermit, "whisper_full_with_state"),
        "hermit must not link whisper.cpp"
    );
    assert!(
        !hermit.lines().any(|l| l.starts_with("whisper_")),
        "no whisper symbol in hermit"
    );
    assert!(
        has(&stt, "whisper_full_with_state"),
        "hermit-stt links whisper.cpp"
    );
    assert!(
        !has(&stt, "llama_decode"),
        "hermit-stt must not link llama.cpp"
    );
    assert!(
        !stt.lines().any(|l| l.starts_with("llama_")),
        "no llama symbol in hermit-stt"
    );
}

#[test]
fn bad_audio_is_refused_in_words() {
    common::model_file("ggml-base.bin");
    let d = DataDir::new();
    let dir = d.root.path();
    let ogg = common::speech(dir, "voice", "Hello there.");
    let full = std::fs::read(&ogg).unwrap();
    let cases: [(&str, Vec<u8>, &[&str]); 4] = [
        (
            "truncated.ogg",
            full[..full.len() / 2].to_vec(),
            &["truncated"],
        ),
        (
            "notes.ogg",
            b"just some text, claiming to be audio/ogg".to_vec(),
            &["not audio"],
        ),
        ("empty.ogg", Vec::new(), &["empty"]),
        // Noise named .mp3: no format found, or frames that decode to nothing.
        (
            "random.mp3",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
            &["not audio", "no audio", "damaged"],
        ),
    ];
    for (name, bytes, want) in cases {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let out = d.run(&["transcribe", p.to_str().unwrap()]);
        assert!(!out.status.success(), "{name} was accepted");
        let err = stderr(&out);
        assert!(want.iter().any(|w| err.contains(w)), "{name}: {err}");
    }
    // Over the limit: refused, not cut.
    let out = d
        .cmd()
        .args(["transcribe", ogg.to_str().unwrap()])
        .env("HERMIT_VOICE__MAX_SECONDS", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("too long"), "{}", stderr(&out));
}

/// A stand-in for the worker (a test double, never the real part): it
/// greets like `hermit-stt`, then misbehaves as `behaviour` says.
fn fake_worker(dir: &Path, behaviour: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(format!("fake-stt-{}", behaviour.len()));
    std::fs::write(
        &p,
        format!("#!/bin/sh\necho '{{\"ready\": true}}'\nread line\n{behaviour}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn a_worker_that_hangs_or_dies_ends_the_job_with_a_clear_error() {
    common::model_file("ggml-base.bin");
    let d = DataDir::new();
    let dir = d.root.path();
    let audio = dir.join("a.ogg");
    std::fs::write(&audio, b"whatever").unwrap();
    let run = |worker: &Path| {
        d.cmd()
            .args(["transcribe", audio.to_str().unwrap()])
            .env("HERMIT_STT", worker)
            .env("HERMIT_VOICE__TIMEOUT_SECONDS", "2")
            .output()
            .unwrap()
    };
    let started = std::time::Instant::now();
    let out = run(&fake_worker(dir, "exec sleep 600"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("took longer than 2 s"),
        "{}",
        stderr(&out)
    );
    assert!(started.elapsed().as_secs() < 60, "the hang was not cut");
    let out = run(&fake_worker(dir, "exit 3"));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("stopped unexpectedly"),
        "{}",
        stderr(&out)
    );
    // One that cannot start says why, in the error itself.
    let broken = dir.join("broken-stt");
    std::fs::write(
        &broken,
        "#!/bin/sh\necho 'cannot load the model: bad magic' >&2\nexit 1\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = run(&broken);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("exited at start: cannot load the model: bad magic"),
        "{}",
        stderr(&out)
    );
    let out = run(Path::new("/nonexistent/hermit-stt"));
    assert!(
        stderr(&out).contains("cargo build --release"),
        "{}",
        stderr(&out)
    );
}

/// The worker runs in the sandbox, whatever it is: a stand-in worker (a
/// test double; the real one is started the same way, by the same code, and
/// transcribes in the tests above) tries to read a file of the data
/// directory, to open its model for writing (appending nothing), to read and write outside its inbox, and
/// to reach a port on loopback, and says what it could do.
#[test]
fn the_speech_worker_is_confined_by_the_sandbox() {
    let model = common::model_file("ggml-base.bin");
    let d = DataDir::new();
    let dir = d.root.path();
    std::fs::create_dir_all(d.data()).unwrap();
    let secret = d.data().join("secret.txt");
    std::fs::write(&secret, "the owner's secret").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let audio = dir.join("a.ogg");
    std::fs::write(&audio, b"some bytes").unwrap();
    let outside = dir.join("written-by-worker");
    let probe = format!(
        r#"try() {{ if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }}
clip=$(echo "$line" | sed 's/.*"path":"\([^"]*\)".*/\1/')
echo "{{\"id\":1,\"ok\":false,\"error\":\"clip=$(try cat "$clip") secret=$(try cat {secret}) model=$(try head -c 16 {model}) modelwrite=$(try sh -c ': >> {model}') outside=$(try sh -c 'echo x > {outside}') net=$(try bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}')\"}}""#,
        secret = secret.display(),
        model = model.display(),
        outside = outside.display(),
    );
    let worker = fake_worker(dir, &probe);
    let out = d
        .cmd()
        .args(["transcribe", audio.to_str().unwrap()])
        .env("HERMIT_STT", &worker)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("clip=yes secret=no model=yes modelwrite=no outside=no net=no"),
        "{err}"
    );
    assert!(!outside.exists());
    assert!(
        listener.accept().is_err(),
        "the worker reached a port on loopback"
    );
    // The copy made for it in the inbox is gone.
    let inbox = d.data().join("voice/inbox");
    assert_eq!(std::fs::read_dir(&inbox).unwrap().count(), 0);
}
