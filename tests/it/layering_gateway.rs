//! Inside the gateway (and `net`, the floor under it and the mock) every arrow runs down, as
//! between the rooms of `src/` ([`super::layering`], [`super::layering_circles`]):
//! - at each folder, its rooms (the files and folders in it, its own `mod.rs` one of them)
//!   import each other round no circle;
//! - no file imports its own folder's `mod.rs`, or a folder's above it: a `mod.rs` declares
//!   and re-exports, so whatever a file takes from it stands in a room it can name;
//! - a `mod.rs` holds only `mod` and `use` lines, under [`MOD_RS_LINES`] lines.
//!
//! The arrows are [`super::layering_circles::every_arrow`]'s: every `crate::…` / `super::…`
//! path a file names, comments and test code left out.

use std::collections::{BTreeMap, BTreeSet};

use super::layering::{code_lines, rust_files, src};
use super::layering_circles::{a_circle, every_arrow, module_of};

/// The folders held to these rules, with everything below them.
const HELD: &[&str] = &["gateway", "net"];

/// Longest `mod.rs` (doc comment included).
const MOD_RS_LINES: usize = 60;

/// The room of `rel` (a path under `src/`) inside the folder `dir`: the first name after
/// `dir/` (a file, or a folder), `None` when `rel` is not inside `dir`.
fn room_in<'a>(dir: &str, rel: &'a str) -> Option<&'a str> {
    let rest = rel.strip_prefix(dir)?.strip_prefix('/')?;
    rest.split('/').next()
}

/// Every folder at or below `top` that holds a Rust file, as paths under `src/`.
fn folders_below(top: &str, files: &[(String, String)]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (rel, _) in files {
        if !rel.starts_with(&format!("{top}/")) {
            continue;
        }
        let mut dir = rel.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            out.insert(parent.to_string());
            if parent == top {
                break;
            }
            dir = parent;
        }
    }
    out
}

/// The arrows between the rooms of `dir` (files of one room importing another's).
fn room_arrows(
    dir: &str,
    arrows: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, tos) in arrows {
        let Some(a) = room_in(dir, from) else {
            continue;
        };
        for to in tos {
            if let Some(b) = room_in(dir, to)
                && a != b
            {
                out.entry(format!("{dir}/{a}"))
                    .or_default()
                    .insert(format!("{dir}/{b}"));
            }
        }
    }
    out
}

/// The circles among the rooms of every folder at or below the [`HELD`] ones, one line each.
fn room_circles(files: &[(String, String)]) -> Vec<String> {
    let arrows = every_arrow(files);
    let mut out = Vec::new();
    for top in HELD {
        for dir in folders_below(top, files) {
            if let Some(circle) = a_circle(&room_arrows(&dir, &arrows)) {
                out.push(format!(
                    "rooms of src/{dir} in a circle: src/{}",
                    circle.join(" -> src/")
                ));
            }
        }
    }
    out
}

/// Files that import the `mod.rs` of their own folder or of a folder above it.
fn arrows_into_own_mod_rs(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (from, tos) in every_arrow(files) {
        if !HELD.iter().any(|h| from.starts_with(&format!("{h}/"))) {
            continue;
        }
        let here = module_of(&from);
        for to in tos.iter().filter(|t| t.ends_with("mod.rs")) {
            let folder = module_of(to);
            if here.len() > folder.len() && here.starts_with(&folder) {
                out.push(format!(
                    "src/{from} imports src/{to}, its own folder's face: name the room the thing stands in"
                ));
            }
        }
    }
    out
}

/// Where a `mod.rs` does more than declare and re-export, or is too long.
fn mod_rs_breaks(rel: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lines = text.lines().count();
    if lines > MOD_RS_LINES {
        out.push(format!(
            "src/{rel} has {lines} lines: a mod.rs declares and re-exports (under {MOD_RS_LINES})"
        ));
    }
    let code: Vec<&str> = code_lines(text).map(|(_, l)| l).collect();
    for statement in code.join("\n").split(';') {
        let s = statement.trim();
        if s.is_empty() {
            continue;
        }
        // Attributes (`#[cfg(test)]`, `#[path = …]`) on lines of their own are left out.
        let head: Vec<&str> = s
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("#["))
            .collect();
        let head = head.join(" ");
        let mut words = head.split_whitespace();
        let keyword = match words.next() {
            Some(vis) if vis.starts_with("pub") => words.next(),
            other => other,
        };
        let declares = keyword.is_none_or(|k| k == "mod" || k == "use");
        if !declares {
            out.push(format!(
                "src/{rel}: a mod.rs declares and re-exports; move this into a room: {}",
                s.lines().next().unwrap_or_default()
            ));
        }
    }
    out
}

#[test]
fn every_arrow_inside_the_gateway_runs_down() {
    let files = rust_files(&src());
    assert!(
        folders_below("gateway", &files).len() > 5,
        "the gateway's rooms were not found under {:?}",
        src()
    );
    let mut breaks = room_circles(&files);
    breaks.extend(arrows_into_own_mod_rs(&files));
    assert!(breaks.is_empty(), "\n{}", breaks.join("\n"));
}

#[test]
fn the_gateways_mod_rs_files_declare_and_re_export_only() {
    let files = rust_files(&src());
    let breaks: Vec<String> = files
        .iter()
        .filter(|(rel, _)| {
            rel.ends_with("/mod.rs") && HELD.iter().any(|h| rel.starts_with(&format!("{h}/")))
        })
        .flat_map(|(rel, text)| mod_rs_breaks(rel, text))
        .collect();
    assert!(breaks.is_empty(), "\n{}", breaks.join("\n"));
}

#[test]
fn the_room_rules_catch_what_they_forbid() {
    let files: Vec<(String, String)> = [
        ("lib.rs", "pub mod gateway;\n"),
        (
            "gateway/mod.rs",
            "pub mod a;\npub mod b;\npub mod c;\npub use a::A;\nfn spawn() {}\n",
        ),
        ("gateway/a.rs", "use super::b::B;\n"),
        (
            "gateway/b.rs",
            "use crate::gateway::c::d::D;\nfn f() { crate::gateway::A::new(); }\n",
        ),
        ("gateway/c/mod.rs", "pub mod d;\n"),
        ("gateway/c/d.rs", "use super::super::a::A;\n"),
    ]
    .into_iter()
    .map(|(r, t)| (r.to_string(), t.to_string()))
    .collect();
    let circles = room_circles(&files);
    assert_eq!(circles.len(), 1, "{circles:#?}");
    assert!(
        circles[0].contains("src/gateway/a.rs -> src/gateway/b.rs -> src/gateway/c"),
        "{circles:#?}"
    );
    let into_face = arrows_into_own_mod_rs(&files);
    assert_eq!(into_face.len(), 1, "{into_face:#?}");
    assert!(into_face[0].starts_with("src/gateway/b.rs imports src/gateway/mod.rs"));
    let work = mod_rs_breaks("gateway/mod.rs", &files[1].1);
    assert_eq!(work.len(), 1, "{work:#?}");
    assert!(work[0].contains("fn spawn"));
    assert!(mod_rs_breaks("gateway/c/mod.rs", &files[4].1).is_empty());
    let long = "pub mod x;\n".repeat(MOD_RS_LINES + 1);
    assert_eq!(mod_rs_breaks("gateway/x/mod.rs", &long).len(), 1);
}
