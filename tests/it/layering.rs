//! The floors of the house, as a test: it reads `src/` and fails when
//! - `policy` (the pure decisions) reaches for files, sockets, clocks, processes, the
//!   environment, tokio, clap, or another room of the crate;
//! - library code (anything but `main.rs`, `cli/` and `commands/`) imports the command line;
//! - a lower floor imports a room above it: `render` draws what it is handed (the running
//!   gateway's view comes as the `wire` types, never from `gateway` itself), `wire` stands
//!   under both, and `net` under the gateway and the mock, which never imports the gateway.
//!
//! That no files import each other round a circle is [`super::layering_circles`].
//!
//! Addresses are data (`std::net::IpAddr` may be parsed in `policy`); sockets are not.
//! Test code (`tests.rs`, `*_tests.rs`, inline `#[cfg(test)] mod tests`) is not held to the
//! rules: a test may build a temp dir. Comments are skipped, so a doc comment may name what
//! the code must not use.

use std::path::{Path, PathBuf};

/// What `policy` must not name, and why.
const POLICY_FORBIDS: &[(&str, &str)] = &[
    ("std::fs", "files"),
    ("fs_err", "files"),
    ("tempfile", "files"),
    ("File::", "files"),
    ("OpenOptions", "files"),
    ("TcpStream", "sockets"),
    ("TcpListener", "sockets"),
    ("UdpSocket", "sockets"),
    ("ToSocketAddrs", "sockets (name lookups)"),
    ("hyper", "sockets"),
    ("axum", "sockets"),
    ("reqwest", "sockets"),
    ("tokio", "tokio"),
    ("clap", "clap"),
    ("SystemTime", "clocks"),
    ("Instant", "clocks"),
    ("Timestamp::now", "clocks"),
    ("Zoned::now", "clocks"),
    ("TimeZone::system", "clocks"),
    ("now_ms()", "clocks"),
    ("thread::sleep", "clocks"),
    ("std::process", "processes"),
    ("std::env", "the environment"),
    ("println!", "printing"),
    ("eprintln!", "printing"),
];

/// The other rooms of the crate: `policy` is the ground floor and imports none of them.
const ROOMS: &[&str] = &[
    "cli", "codex", "commands", "gateway", "logging", "mock", "net", "os", "render", "store",
    "wire",
];

/// Floors and the rooms above them that they must not import, with why.
const FLOORS: &[(&str, &[&str], &str)] = &[
    (
        "render",
        &["commands", "gateway", "mock"],
        "views draw what they are handed; a live gateway's view is a `crate::wire` type",
    ),
    (
        "wire",
        &["commands", "gateway", "mock", "render", "shared", "store"],
        "the wire types stand under the gateway and the views, on `policy` alone",
    ),
    (
        "net",
        &[
            "commands", "gateway", "mock", "render", "shared", "store", "codex",
        ],
        "the HTTP client, the accept loop and the WebSocket wire stand under the gateway and the mock",
    ),
    (
        "mock",
        &["commands", "gateway"],
        "the mock upstream stands on `net`, beside the gateway it answers, never on it",
    ),
];

pub(super) fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted, with its path relative to `src/`.
pub(super) fn rust_files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(src())
                    .or_else(|_| path.strip_prefix(src().parent().unwrap()))
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

pub(super) fn is_test_file(rel: &str) -> bool {
    rel.ends_with("/tests.rs") || rel.ends_with("_tests.rs")
}

/// The lines of `text` that are code, numbered from 1: comments and inline test modules left
/// out.
pub(super) fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let end = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..end]
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
}

/// Where `text` (the file `rel` of `policy`, named from the checkout's root) breaks the rules,
/// one line each.
fn policy_breaks(rel: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in code_lines(text) {
        for (needle, what) in POLICY_FORBIDS {
            if line.contains(needle) {
                out.push(format!(
                    "{rel}:{n}: policy touches {what} ({needle}): {line}"
                ));
            }
        }
        for room in ROOMS {
            for spelling in [format!("crate::{room}::"), format!("crate::{room};")] {
                if line.contains(&spelling) {
                    out.push(format!(
                        "{rel}:{n}: policy imports another room ({room}): {line}"
                    ));
                }
            }
        }
    }
    out
}

/// Where library code `text` (the file `rel`) imports the command line.
fn cli_breaks(rel: &str, text: &str) -> Vec<String> {
    code_lines(text)
        .filter(|(_, l)| l.contains("crate::cli") || l.contains("cao::cli"))
        .map(|(n, l)| format!("src/{rel}:{n}: library code imports the command line: {l}"))
        .collect()
}

/// Where `text` (the file `rel`, on the floor `floor`) imports one of the rooms `above`.
fn floor_breaks(floor: &str, above: &[&str], why: &str, rel: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (n, line) in code_lines(text) {
        for room in above {
            if [format!("crate::{room}::"), format!("crate::{room};")]
                .iter()
                .any(|spelling| line.contains(spelling))
            {
                out.push(format!(
                    "src/{rel}:{n}: {floor} imports {room}, a floor above it ({why}): {line}"
                ));
            }
        }
    }
    out
}

#[test]
fn policy_touches_no_files_sockets_clocks_or_other_rooms() {
    let files = rust_files(&policy_src());
    assert!(
        files.len() > 5,
        "no policy sources found under {:?}",
        policy_src()
    );
    let breaks: Vec<String> = files
        .iter()
        .filter(|(rel, _)| !is_test_file(rel))
        .flat_map(|(rel, text)| policy_breaks(rel, text))
        .collect();
    assert!(breaks.is_empty(), "\n{}", breaks.join("\n"));
}

/// The pure core's sources: a crate of its own (`cao-policy`), re-exported as `cao::policy`.
fn policy_src() -> PathBuf {
    src().parent().unwrap().join("crates/policy/src")
}

/// The policy crate may depend on these alone: data formats, time arithmetic and text
/// matching. A runtime, the file system helpers or the command line there is a build break.
const POLICY_MAY_DEPEND_ON: &[&str] = &[
    "serde",
    "serde_json",
    "jiff",
    "regex",
    "memchr",
    "thiserror",
];

#[test]
fn the_policy_crate_depends_on_no_runtime_files_or_command_line() {
    let manifest =
        std::fs::read_to_string(policy_src().parent().unwrap().join("Cargo.toml")).unwrap();
    let deps: toml_edit::DocumentMut = manifest.parse().unwrap();
    let names: Vec<&str> = deps["dependencies"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, _)| k)
        .collect();
    let strays: Vec<&&str> = names
        .iter()
        .filter(|n| !POLICY_MAY_DEPEND_ON.contains(n))
        .collect();
    assert!(
        strays.is_empty(),
        "crates/policy/Cargo.toml depends on {strays:?}: policy is pure, keep I/O at the edges"
    );
}

#[test]
fn only_main_cli_and_commands_know_the_command_line() {
    let files = rust_files(&src());
    let breaks: Vec<String> = files
        .iter()
        .filter(|(rel, _)| {
            !(rel == "main.rs"
                || rel.starts_with("cli/")
                || rel.starts_with("commands/")
                || rel == "lib.rs")
        })
        .flat_map(|(rel, text)| cli_breaks(rel, text))
        .collect();
    assert!(breaks.is_empty(), "\n{}", breaks.join("\n"));
}

#[test]
fn the_rules_catch_what_they_forbid() {
    let text = "//! may name tokio in a comment\nuse tokio::time::sleep;\nuse crate::store::Store;\nlet t = jiff::Timestamp::now();\n#[cfg(test)]\nmod tests {\n    use std::fs;\n}\n";
    let breaks = policy_breaks("crates/policy/src/x.rs", text);
    assert_eq!(breaks.len(), 3, "{breaks:#?}");
    assert!(breaks[0].starts_with("crates/policy/src/x.rs:2: policy touches tokio"));
    assert!(breaks[1].contains("another room (store)"));
    assert!(breaks[2].contains("clocks"));
    assert_eq!(
        cli_breaks("gateway/x.rs", "use crate::cli::RunArgs;\n").len(),
        1
    );
    assert!(cli_breaks("gateway/x.rs", "// crate::cli in words\n").is_empty());
}

#[test]
fn render_and_wire_import_no_floor_above_them() {
    let (floor, above, why) = FLOORS[0];
    assert_eq!(
        floor_breaks(
            floor,
            above,
            why,
            "render/x.rs",
            "use crate::gateway::wire::Status;\n"
        )
        .len(),
        1,
        "the rule misses an import of the gateway"
    );
    let files = rust_files(&src());
    let mut breaks = Vec::new();
    for (floor, above, why) in FLOORS {
        let on_floor: Vec<_> = files
            .iter()
            .filter(|(rel, _)| {
                (rel.starts_with(&format!("{floor}/")) || *rel == format!("{floor}.rs"))
                    && !is_test_file(rel)
            })
            .collect();
        assert!(
            !on_floor.is_empty(),
            "no sources of {floor} under {:?}",
            src()
        );
        for (rel, text) in on_floor {
            breaks.extend(floor_breaks(floor, above, why, rel, text));
        }
    }
    assert!(breaks.is_empty(), "\n{}", breaks.join("\n"));
}
