//! The map stays true: the modules of `src/` form layers with no import
//! cycle between them, and a few boundaries that the design depends on
//! hold (a channel never reaches llama.cpp or the sandbox; the vocabulary
//! depends on nothing). Read from the source, so a new `use` that breaks a
//! layer fails here, before review.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules of the library, and the modules each one names (`crate::x`).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    // The checkout the tests run in (nextest and cargo set it at run
    // time): a target directory shared by two checkouts may hold a test
    // binary built in the other one.
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let src = root.join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let modules: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?.strip_suffix(';').map(String::from)
        })
        .collect();
    assert!(modules.len() > 5, "src/lib.rs declares its modules");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if !modules.contains(&top) {
            continue; // lib.rs, and the binary's own modules
        }
        let text = code_only(&std::fs::read_to_string(&file).unwrap());
        let names = graph.entry(top.clone()).or_default();
        for name in crate_paths(&text) {
            if name != top && modules.contains(&name) {
                names.insert(name);
            }
        }
    }
    graph
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The source without comments and without its unit tests.
fn code_only(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module named as `crate::name` or inside `crate::{a, b::c}`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            // Top-level names of the group: at depth 0, after `{` or `,`.
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                        out.insert(ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_modules_form_layers_without_a_cycle() {
    let graph = module_graph();
    if let Some(cycle) = find_cycle(&graph) {
        let edges: Vec<String> = graph
            .iter()
            .map(|(m, uses)| format!("  {m} -> {}", Vec::from_iter(uses.clone()).join(" ")))
            .collect();
        panic!(
            "import cycle between modules: {}\n(move the shared type down, into `vocab` or the lower module)\n{}",
            cycle.join(" -> "),
            edges.join("\n")
        );
    }
}

#[test]
fn boundaries_the_design_depends_on_hold() {
    let graph = module_graph();
    // (module, what it must never name, why)
    let rules: &[(&str, &str, &str)] = &[
        (
            "vocab",
            "*",
            "the vocabulary depends on nothing of Hermit's",
        ),
        (
            "channels",
            "inference",
            "a channel knows nothing of llama.cpp",
        ),
        (
            "channels",
            "sandbox",
            "a channel never starts a tool process",
        ),
        ("channels", "tools", "a channel knows nothing of tools"),
        ("tools", "channels", "tools know nothing of Matrix"),
        (
            "tools",
            "agent",
            "tools are called by the agent, never call it",
        ),
        (
            "trust",
            "agent",
            "the policy decides; it does not drive turns",
        ),
        ("trust", "tools", "the policy sees effects, not tools"),
        ("sandbox", "trust", "the sandbox obeys; it does not decide"),
        (
            "inference",
            "agent",
            "the engine knows nothing of conversations",
        ),
        (
            "memory",
            "agent",
            "memory is used by the agent, not the reverse",
        ),
    ];
    let mut broken = Vec::new();
    for (module, never, why) in rules {
        let uses = graph.get(*module).cloned().unwrap_or_default();
        let bad: Vec<_> = if *never == "*" {
            uses.into_iter().collect()
        } else {
            uses.into_iter().filter(|u| u == never).collect()
        };
        if !bad.is_empty() {
            broken.push(format!("{module} names {}: {why}", bad.join(", ")));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_graph_reader_sees_grouped_and_nested_paths() {
    let names = crate_paths(
        "use crate::{a::B, c, d::{e, f}};\nlet x = crate::g::h(); // crate::commented\n",
    );
    assert_eq!(
        Vec::from_iter(names),
        ["a", "c", "commented", "d", "g"].map(String::from)
    );
    let code = code_only("use crate::a; // crate::b\n#[cfg(test)]\nmod tests { crate::c }");
    assert_eq!(Vec::from_iter(crate_paths(&code)), ["a"].map(String::from));
}
