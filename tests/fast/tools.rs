//! Tools through `hermit tools run`: the same decision point and sandbox as
//! the agent's calls. Path escapes of the file tools, the trash, the shell.

use crate::common::*;

use std::os::unix::fs::symlink;
use std::path::Path;

fn assert_refused(out: &std::process::Output, needle: &str) {
    assert!(!out.status.success(), "{}", stdout(out));
    assert!(stderr(out).contains(needle), "{}", stderr(out));
    assert!(!stderr(out).contains("panicked"));
}

#[test]
fn files_write_read_list_move() {
    let b = DataDir::new();
    let out = b.tool(
        "write_file",
        serde_json::json!({"path": "notes/todo.txt", "content": "milk\n"}),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(b.workspace().join("notes/todo.txt")).unwrap(),
        "milk\n"
    );
    let out = b.tool("read_file", serde_json::json!({"path": "notes/todo.txt"}));
    assert_eq!(stdout(&out), "milk\n\n");
    let out = b.tool(
        "move_file",
        serde_json::json!({"from": "notes/todo.txt", "to": "todo.txt"}),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = b.tool("list_files", serde_json::json!({}));
    assert!(
        stdout(&out).contains("todo.txt\tfile\t5 bytes"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn files_refuses_every_path_escape() {
    let b = DataDir::new();
    let secret_dir = b.root.path().join("data");
    std::fs::create_dir_all(b.workspace().join("notes")).unwrap();
    std::fs::write(secret_dir.join("secret.txt"), "hunter2").unwrap();
    for path in ["../secret.txt", "/etc/passwd", "notes/../../secret.txt"] {
        let out = b.tool("read_file", serde_json::json!({"path": path}));
        assert_refused(&out, "outside the workspace");
        assert!(!stdout(&out).contains("hunter2"));
    }
    // A symlink pointing out.
    symlink(
        secret_dir.join("secret.txt"),
        b.workspace().join("link.txt"),
    )
    .unwrap();
    let out = b.tool("read_file", serde_json::json!({"path": "link.txt"}));
    assert_refused(&out, "outside the workspace");
    // Writing through it does not touch the target either.
    let out = b.tool(
        "write_file",
        serde_json::json!({"path": "link.txt", "content": "x"}),
    );
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(secret_dir.join("secret.txt")).unwrap(),
        "hunter2"
    );
    // A directory swapped for a symlink after a file inside was seen: the
    // same path now leads out, and the kernel refuses it at use.
    std::fs::create_dir_all(b.workspace().join("docs")).unwrap();
    std::fs::write(b.workspace().join("docs/a.txt"), "fine").unwrap();
    let out = b.tool("read_file", serde_json::json!({"path": "docs/a.txt"}));
    assert!(out.status.success());
    std::fs::remove_dir_all(b.workspace().join("docs")).unwrap();
    std::fs::create_dir_all(b.root.path().join("elsewhere")).unwrap();
    std::fs::write(b.root.path().join("elsewhere/a.txt"), "hunter2").unwrap();
    symlink(b.root.path().join("elsewhere"), b.workspace().join("docs")).unwrap();
    let out = b.tool("read_file", serde_json::json!({"path": "docs/a.txt"}));
    assert_refused(&out, "outside the workspace");
    // Moving out is refused too.
    let out = b.tool(
        "move_file",
        serde_json::json!({"from": "docs/a.txt", "to": "../stolen.txt"}),
    );
    assert!(!out.status.success());
    assert!(!Path::new(&b.root.path().join("data/stolen.txt")).exists());
}

#[test]
fn a_deleted_file_is_restorable() {
    let b = DataDir::new();
    b.tool(
        "write_file",
        serde_json::json!({"path": "draft.md", "content": "# plan"}),
    );
    let out = b.tool("delete_file", serde_json::json!({"path": "draft.md"}));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!b.workspace().join("draft.md").exists());
    let said = stdout(&out);
    let id = said
        .split("hermit files restore ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("the reply names the restore command")
        .to_string();
    let out = b.run(&["files", "trash"]);
    assert!(stdout(&out).contains("draft.md"));
    let out = b.run(&["files", "restore", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(b.workspace().join("draft.md")).unwrap(),
        "# plan"
    );
}

#[test]
fn shell_runs_in_the_workspace_and_reports_failure() {
    let b = DataDir::new();
    let out = b.tool(
        "shell",
        serde_json::json!({"command": "echo made > made.txt && pwd"}),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&b.workspace().display().to_string()));
    assert!(b.workspace().join("made.txt").exists());
    let out = b.tool("shell", serde_json::json!({"command": "exit 3"}));
    assert!(!out.status.success());
    assert!(stdout(&out).contains("exit code: 3"));
}

#[test]
fn bad_calls_are_refused_before_anything_runs() {
    let b = DataDir::new();
    assert_refused(&b.tool("nope", serde_json::json!({})), "no tool named");
    assert_refused(
        &b.tool("shell", serde_json::json!({"cmd": "ls"})),
        "invalid arguments",
    );
    assert_refused(
        &b.tool("write_file", serde_json::json!({"path": "a.txt"})),
        "content is required",
    );
    let out = b.run(&["tools", "run", "shell", "--args", "{not json"]);
    assert_refused(&out, "not valid JSON");
}

#[test]
fn tools_list_names_every_tool_with_effects() {
    let b = DataDir::new();
    let out = b.run(&["tools", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "shell",
            "list_files",
            "read_file",
            "write_file",
            "move_file",
            "delete_file",
            "trash",
            "notes",
            "fetch",
            "time",
            "calculate",
            "remind",
            "schedule",
            "schedule_task",
            "reminders",
            "cancel_reminder",
            "briefing",
            "watch"
        ]
    );
    assert_eq!(v[0]["effects"], serde_json::json!(["write", "exec"]));
}

#[test]
fn notes_are_kept_in_the_database() {
    let b = DataDir::new();
    let create = |title: &str, text: &str| {
        b.tool(
            "notes",
            serde_json::json!({"action": "create", "title": title, "text": text}),
        )
    };
    assert!(create("groceries", "milk").status.success());
    assert_refused(&create("groceries", "again"), "exists");
    let out = b.tool(
        "notes",
        serde_json::json!({"action": "append", "title": "groceries", "text": "eggs"}),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(create("ideas", "a garden").status.success());
    let out = b.tool(
        "notes",
        serde_json::json!({"action": "search", "text": "egg"}),
    );
    assert_eq!(stdout(&out), "# groceries\nmilk\neggs\n");
    let out = b.tool("notes", serde_json::json!({"action": "list"}));
    assert!(stdout(&out).contains("groceries") && stdout(&out).contains("ideas"));
    // A search for a LIKE wildcard is literal.
    let out = b.tool(
        "notes",
        serde_json::json!({"action": "search", "text": "%"}),
    );
    assert!(
        stdout(&out).contains("no note mentions"),
        "{}",
        stdout(&out)
    );
    assert!(b.root.path().join("data/hermit.db").exists());
}
