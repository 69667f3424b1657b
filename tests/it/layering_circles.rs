//! No import circles between the files of `src/`: it reads every path a file names
//! (`crate::…`, `super::…`, in `use` lines and in code), takes the longest prefix that is a
//! module file as the file it reaches, and fails on any loop of such arrows, naming it.
//!
//! An arrow between a module and one of its own descendants (a folder's `mod.rs` declaring
//! and re-exporting its children, a child taking a name from its parent) is not counted: that
//! is how Rust folders are built, not a circle between rooms. Comments and test code are left
//! out, as in [`super::layering`].

use std::collections::{BTreeMap, BTreeSet};

use super::layering::{code_lines, is_test_file, rust_files, src};

/// A module's path from the crate root: `gateway/proxy/mod.rs` is `["gateway", "proxy"]`.
pub(super) fn module_of(rel: &str) -> Vec<String> {
    let stem = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Every path a line of code names from the crate root or its parent, with `use` groups
/// (`super::{a, b::C}`) spread out: each as segments relative to `here`, resolved to absolute.
fn named_paths(here: &[String], statement: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = statement[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            let before = statement[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            for path in expand(&statement[at..]) {
                if let Some(abs) = absolute(here, &path) {
                    out.push(abs);
                }
            }
        }
    }
    out
}

/// `a::b::{c, d::{e, F}}` and what follows it: the paths it names, as segments.
fn expand(text: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut rest = text;
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end > 0 {
            prefix.push(rest[..end].to_string());
        }
        rest = &rest[end..];
        if let Some(r) = rest.strip_prefix("::") {
            rest = r;
            if let Some(group) = rest.strip_prefix('{') {
                return split_group(group)
                    .into_iter()
                    .flat_map(|item| {
                        expand(item).into_iter().map(|tail| {
                            let mut p = prefix.clone();
                            p.extend(tail);
                            p
                        })
                    })
                    .collect();
            }
        } else {
            return vec![prefix];
        }
    }
}

/// The items of a `{…}` group up to its closing brace, split at top-level commas.
fn split_group(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0usize, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// `path` (starting `crate` or `super`, as written in the module `here`) from the crate root.
fn absolute(here: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut base = here.to_vec();
    let mut segs = path.iter().peekable();
    match segs.next().map(String::as_str) {
        Some("crate") => base.clear(),
        Some("super") => {
            base.pop()?;
            while segs.peek().is_some_and(|s| *s == "super") {
                segs.next();
                base.pop()?;
            }
        }
        _ => return None,
    }
    base.extend(segs.filter(|s| *s != "self").cloned());
    Some(base)
}

/// The file of the longest prefix of `path` that is a module of `modules`.
fn file_of<'a>(modules: &'a BTreeMap<Vec<String>, String>, path: &[String]) -> Option<&'a str> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n]))
        .map(String::as_str)
}

/// The arrows between files: `from -> {to}`, a module and its own descendants left out.
fn arrows(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = every_arrow(files);
    for (from, to) in out.iter_mut() {
        let here = module_of(from);
        to.retain(|t| {
            let there = module_of(t);
            !(there.starts_with(&here) || here.starts_with(&there))
        });
    }
    out.retain(|_, to| !to.is_empty());
    out
}

/// Every arrow between files, `from -> {to}`, a folder's `mod.rs` and its children included
/// (a file's arrows to itself left out).
pub(super) fn every_arrow(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|(rel, _)| (module_of(rel), rel.clone()))
        .collect();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in files.iter().filter(|(rel, _)| !is_test_file(rel)) {
        let here = module_of(rel);
        let code: Vec<&str> = code_lines(text).map(|(_, l)| l).collect();
        // A `use` may span lines: read it whole.
        for statement in code.join("\n").split(';') {
            for path in named_paths(&here, statement) {
                let Some(to) = file_of(&modules, &path) else {
                    continue;
                };
                if to != rel {
                    out.entry(rel.clone()).or_default().insert(to.to_string());
                }
            }
        }
    }
    out
}

/// One loop of arrows, if there is any: the files in order, the first again at the end.
pub(super) fn a_circle(arrows: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // Depth first; a file met again while still on the path closes a loop.
    fn visit(
        at: &str,
        arrows: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == at) {
            let mut circle = path[i..].to_vec();
            circle.push(at.to_string());
            return Some(circle);
        }
        if !done.insert(at.to_string()) {
            return None;
        }
        path.push(at.to_string());
        for next in arrows.get(at).into_iter().flatten() {
            if let Some(c) = visit(next, arrows, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    arrows
        .keys()
        .find_map(|start| visit(start, arrows, &mut Vec::new(), &mut done))
}

#[test]
fn no_file_of_src_imports_itself_round_a_circle() {
    let files = rust_files(&src());
    let arrows = arrows(&files);
    assert!(arrows.len() > 50, "too few arrows read: {}", arrows.len());
    if let Some(circle) = a_circle(&arrows) {
        panic!("import circle: src/{}", circle.join(" -> src/"));
    }
}

#[test]
fn the_circle_check_sees_use_groups_parents_and_loops() {
    let files: Vec<(String, String)> = [
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        ("a/mod.rs", "pub mod x;\nuse x::Thing;\n"),
        (
            "a/x.rs",
            "use super::super::b::{self, y::{Y, Z}};\nuse super::Up;\n",
        ),
        ("b/mod.rs", "pub mod y;\n"),
        (
            "b/y.rs",
            "fn f() { crate::a::x::Thing::new(); }\n// crate::b in a comment\n",
        ),
    ]
    .into_iter()
    .map(|(r, t)| (r.to_string(), t.to_string()))
    .collect();
    let arrows = arrows(&files);
    let of = |f: &str| arrows.get(f).cloned().unwrap_or_default();
    assert_eq!(
        of("a/x.rs"),
        BTreeSet::from(["b/mod.rs".to_string(), "b/y.rs".to_string()])
    );
    assert!(of("a/mod.rs").is_empty(), "a parent's arrow to its child");
    assert_eq!(of("b/y.rs"), BTreeSet::from(["a/x.rs".to_string()]));
    let circle = a_circle(&arrows).unwrap_or_default();
    assert_eq!(circle, ["a/x.rs", "b/y.rs", "a/x.rs"]);
}
