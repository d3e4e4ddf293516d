//! The layer picture of `docs/architecture.md`, checked on the source itself: every
//! `crate::` path in production code (unit-test modules excluded) is an import edge from its
//! file to the file that defines the path's longest existing module. The test fails, naming
//! the files, when
//! - a top-level module has no layer (a new module must be placed in the picture),
//! - a module imports from a higher layer,
//! - files of different top-level modules import each other in a circle,
//! - top-level modules import each other in a circle (anywhere, adapters included),
//! - `ApiError` (an HTTP type) appears outside `routes` (which holds the WebSocket door
//!   too), or `AppState` outside the adapters and the entry points.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, highest first (the order of `docs/architecture.md`).
const LAYERS: &[(&str, &[&str])] = &[
    ("entry", &["main", "lib", "cli", "startup", "demo"]),
    (
        "adapters",
        &["routes", "feed", "feed_sim", "web", "state", "config"],
    ),
    ("services", &["app", "maintenance"]),
    (
        "live",
        &[
            "actors",
            "book",
            "wallet",
            "ledger",
            "settlement",
            "bets",
            "accounts",
            "kyc",
            "auth",
            "bridge",
            "broadcast",
            "cluster",
            "ledger_check",
        ],
    ),
    ("storage", &["db", "redis_client"]),
    ("infrastructure", &["metrics", "telemetry"]),
    ("domain", &["domain"]),
];

/// Where `ApiError` may be named: the adapter that answers HTTP and WebSocket clients
/// (`routes`, with the WebSocket door in `routes::ws`).
const API_ERROR_HOMES: &[&str] = &["routes"];
/// Where `AppState` may be named: the adapters and the entry points that build it.
const APP_STATE_HOMES: &[&str] = &["routes", "state", "startup", "main", "cli"];

struct Source {
    files: BTreeMap<String, String>,
    /// Module path (e.g. `["actors", "market"]`) → file (relative to `src/`).
    modules: BTreeMap<Vec<String>, String>,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn collect(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("reading src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            // Unit-test files (`mod tests;` next to their module) may reach anywhere.
            if rel.ends_with("/tests.rs") || rel.contains("/tests/") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("reading a source file");
            out.insert(rel, production_part(&text));
        }
    }
}

/// The text without comments and without the inline unit-test module.
fn production_part(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    code.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn module_path(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        return vec![parts[0].clone()];
    }
    parts
}

fn top(file: &str) -> &str {
    file.split('/')
        .next()
        .unwrap_or(file)
        .trim_end_matches(".rs")
}

impl Source {
    fn load() -> Source {
        let root = src_dir();
        let mut files = BTreeMap::new();
        collect(&root, &root, &mut files);
        let modules = files.keys().map(|f| (module_path(f), f.clone())).collect();
        Source { files, modules }
    }

    /// The file defining the longest existing module prefix of `segments`.
    fn resolve(&self, segments: &[String]) -> Option<&String> {
        (1..=segments.len())
            .rev()
            .find_map(|k| self.modules.get(&segments[..k]))
    }

    /// File → files it imports (other than itself).
    fn edges(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut edges = BTreeMap::new();
        for (file, text) in &self.files {
            let targets: BTreeSet<String> = crate_paths(text)
                .iter()
                .filter_map(|p| self.resolve(p))
                .filter(|t| *t != file)
                .cloned()
                .collect();
            edges.insert(file.clone(), targets);
        }
        edges
    }
}

fn ident_end(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
        i += 1;
    }
    i
}

/// Every `crate::a::b::C` path of `text`, `use crate::a::{b, c::D}` groups expanded.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find("crate::") {
        let start = from + found;
        from = start + 7;
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let (prefix, next) = path_at(text, from);
        from = next;
        if text[next..].starts_with("::{") {
            let close = group_end(text, next + 3);
            for item in text[next + 3..close].split(',') {
                let mut p = prefix.clone();
                p.extend(
                    item.split("::")
                        .map(|s| s.trim().trim_start_matches('{').trim().to_string())
                        .filter(|s| !s.is_empty() && s != "self" && s != "*"),
                );
                out.push(p);
            }
            from = close;
        } else {
            out.push(prefix);
        }
    }
    out
}

/// The `a::b::c` path starting at `i`, and where it ends.
fn path_at(text: &str, mut i: usize) -> (Vec<String>, usize) {
    let bytes = text.as_bytes();
    let mut segments = Vec::new();
    loop {
        let end = ident_end(bytes, i);
        if end == i {
            break;
        }
        segments.push(text[i..end].to_string());
        i = end;
        if text[i..].starts_with("::") && ident_end(bytes, i + 2) > i + 2 {
            i += 2;
        } else {
            break;
        }
    }
    (segments, i)
}

fn group_end(text: &str, from: usize) -> usize {
    let mut depth = 1;
    for (k, c) in text[from..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return from + k;
                }
            }
            _ => {}
        }
    }
    text.len()
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// Strongly connected components with more than one member (Tarjan, iterative enough for
/// a source tree).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        if let Some(targets) = t.edges.get(v) {
            for w in targets {
                let w = w.as_str();
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let lw = t.low[w];
                    let lv = t.low[v];
                    t.low.insert(v, lv.min(lw));
                } else if t.on.contains(w) {
                    let iw = t.index[w];
                    let lv = t.low[v];
                    t.low.insert(v, lv.min(iw));
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn the_path_reader_expands_groups_and_skips_comments() {
    let text = production_part(
        "use crate::a::{b, c::D, e::{F, G}};\n// crate::hidden\nlet x = crate::h::i(1);\n",
    );
    let paths = crate_paths(&text);
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert!(joined.contains(&"a::b".to_string()), "{joined:?}");
    assert!(joined.contains(&"a::c::D".to_string()), "{joined:?}");
    assert!(joined.contains(&"h::i".to_string()), "{joined:?}");
    assert!(!joined.iter().any(|p| p.contains("hidden")), "{joined:?}");
}

#[test]
fn every_module_has_a_layer_and_imports_only_its_own_or_lower_ones() {
    let source = Source::load();
    let mut unplaced = BTreeSet::new();
    let mut upward = Vec::new();
    for (file, targets) in source.edges() {
        let from = top(&file);
        let Some(lf) = layer_of(from) else {
            unplaced.insert(from.to_string());
            continue;
        };
        for target in targets {
            let to = top(&target);
            match layer_of(to) {
                None => {
                    unplaced.insert(to.to_string());
                }
                Some(lt) if lt < lf => upward.push(format!(
                    "{file} ({}) -> {target} ({})",
                    LAYERS[lf].0, LAYERS[lt].0
                )),
                Some(_) => {}
            }
        }
    }
    assert!(unplaced.is_empty(), "modules without a layer: {unplaced:?}");
    assert!(
        upward.is_empty(),
        "imports into a higher layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_circle_ties_files_of_different_modules() {
    let source = Source::load();
    let crossing: Vec<Vec<String>> = circles(&source.edges())
        .into_iter()
        .filter(|c| c.iter().map(|f| top(f)).collect::<BTreeSet<_>>().len() > 1)
        .collect();
    assert!(
        crossing.is_empty(),
        "import circles across modules: {crossing:#?}"
    );
}

#[test]
fn no_two_modules_import_each_other_in_a_circle() {
    let source = Source::load();
    let mut modules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, targets) in source.edges() {
        let from = top(&file).to_string();
        let entry = modules.entry(from.clone()).or_default();
        entry.extend(
            targets
                .iter()
                .map(|t| top(t).to_string())
                .filter(|t| *t != from),
        );
    }
    let found = circles(&modules);
    assert!(found.is_empty(), "module circles: {found:?}");
}

#[test]
fn http_errors_and_the_app_state_stay_in_the_adapters() {
    let source = Source::load();
    let mut misplaced = Vec::new();
    for (file, text) in &source.files {
        let module = top(file);
        let names = |word: &str| {
            text.match_indices(word).any(|(i, _)| {
                let after = text.as_bytes().get(i + word.len());
                let before = i.checked_sub(1).map(|b| text.as_bytes()[b]);
                !after.is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                    && !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
            })
        };
        if names("ApiError") && !API_ERROR_HOMES.contains(&module) {
            misplaced.push(format!("{file} names ApiError"));
        }
        if names("AppState") && !APP_STATE_HOMES.contains(&module) {
            misplaced.push(format!("{file} names AppState"));
        }
    }
    assert!(misplaced.is_empty(), "{}", misplaced.join("\n"));
}
