//! Reading a Codex command line just enough to continue a conversation on another account.
//!
//! Pure: no files. `cao run` passes everything after `--` to Codex untouched on the first
//! attempt; after a usage limit, [`continue_args`] rewrites it to resume the same session
//! (`codex resume <id>` for the interactive UI, `codex exec resume <id> <prompt>` for `exec`)
//! when the command line is plain enough to rewrite safely, and says `None` otherwise (then the
//! original command runs again, as the TypeScript tool always did).

/// Everything after `--`, minus a leading `codex` word (people type `cao run -- codex exec ...`).
pub fn drop_codex_word(raw: &[String]) -> Vec<String> {
    match raw.split_first() {
        Some((first, rest)) if first == "codex" => rest.to_vec(),
        _ => raw.to_vec(),
    }
}

/// Codex 0.169 options that take a value (top level and `exec`), so the value is not mistaken
/// for a prompt or a subcommand.
const VALUE_OPTIONS: &[&str] = &[
    "-c",
    "--config",
    "--enable",
    "--disable",
    "--remote",
    "--remote-auth-token-env",
    "-i",
    "--image",
    "-m",
    "--model",
    "--local-provider",
    "-p",
    "--profile",
    "-s",
    "--sandbox",
    "-C",
    "--cd",
    "--add-dir",
    "-a",
    "--ask-for-approval",
    "--thread-source",
    "--cyber-access-program",
    "--output-schema",
    "--color",
    "-o",
    "--output-last-message",
];

/// Codex 0.169 subcommands that do not run the interactive conversation UI.
const NON_INTERACTIVE: &[&str] = &[
    "exec",
    "e",
    "review",
    "login",
    "logout",
    "mcp",
    "plugin",
    "app-server",
    "remote-control",
    "completion",
    "update",
    "doctor",
    "sandbox",
    "debug",
    "apply",
    "a",
    "queue",
    "archive",
    "delete",
    "migrate-rollouts",
    "migrate-nfs-db",
    "unarchive",
    "cloud",
    "exec-server",
    "features",
    "help",
    "mcp-server",
];

/// Flags that end Codex at once (`--help`, `--version`).
const INFO_FLAGS: &[&str] = &["-h", "--help", "-V", "--version"];

/// An argument split: options (with their values) before the first positional, the first
/// positional's index, if any.
fn first_positional(args: &[String]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            return (i + 1 < args.len()).then_some(i + 1);
        }
        if VALUE_OPTIONS.contains(&a) {
            i += 2;
            continue;
        }
        if !a.starts_with('-') || a == "-" {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Does this command line start the interactive UI (no subcommand, a prompt, `resume`, `fork`)?
/// That UI shows a usage limit but keeps running, so the limit counts even when it exits 0.
pub fn is_interactive(args: &[String]) -> bool {
    if args.iter().any(|a| INFO_FLAGS.contains(&a.as_str())) {
        return false;
    }
    match first_positional(args) {
        Some(i) => !NON_INTERACTIVE.contains(&args[i].as_str()),
        None => true,
    }
}

/// The command line that continues session `id` on another account, or `None` when the
/// original cannot be rewritten safely (then it is simply run again).
///
/// - interactive (`codex [opts] [PROMPT]`, `codex [opts] resume|fork ...`):
///   `codex [opts] resume <id>` (the prompt is already in the session).
/// - `codex [opts] exec|e [exec opts] PROMPT`: `codex [opts] exec [exec opts] resume <id> PROMPT`
///   (the prompt is sent again: the turn it started never got an answer). Not for a prompt read
///   from stdin (`-` or none), which cannot be read twice.
pub fn continue_args(args: &[String], id: &str) -> Option<Vec<String>> {
    if args.iter().any(|a| INFO_FLAGS.contains(&a.as_str())) || !looks_like_session_id(id) {
        return None;
    }
    let Some(i) = first_positional(args) else {
        let mut out = args.to_vec();
        out.extend(["resume".to_string(), id.to_string()]);
        return Some(out);
    };
    let head = &args[..i];
    match args[i].as_str() {
        "exec" | "e" => {
            let rest = &args[i + 1..];
            let j = first_positional(rest)?;
            // Exactly one positional, the prompt, and nothing after it.
            if j + 1 != rest.len() || rest[j] == "-" || rest[j] == "resume" || rest[j] == "review" {
                return None;
            }
            let mut out = head.to_vec();
            out.push("exec".into());
            out.extend(rest[..j].iter().cloned());
            out.extend(["resume".to_string(), id.to_string(), rest[j].clone()]);
            Some(out)
        }
        s if NON_INTERACTIVE.contains(&s) => None,
        "agents" => None,
        // A prompt, or `resume`/`fork` of some session: continue the session that hit the limit.
        _ => {
            let mut out = head.to_vec();
            out.extend(["resume".to_string(), id.to_string()]);
            Some(out)
        }
    }
}

/// Codex session ids are UUIDs (`01a20f6c-5deb-7bf0-b88f-0458697f3e9a`).
pub fn looks_like_session_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The session id in a rollout file name `rollout-2026-11-24T21-18-09-<uuid>.jsonl`.
pub fn session_id_from_rollout_name(name: &str) -> Option<&str> {
    let stem = name.strip_prefix("rollout-")?.strip_suffix(".jsonl")?;
    let id = stem.get(stem.len().checked_sub(36)?..)?;
    looks_like_session_id(id).then_some(id)
}

/// Did the model produce anything in this session (a rollout line is a model message, a tool
/// call or reasoning)? If not, running the original command again is the same as resuming,
/// without repeating the prompt in the history.
pub fn rollout_line_is_model_output(line: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return false;
    };
    if v.get("type").and_then(|t| t.as_str()) != Some("response_item") {
        return false;
    }
    let p = &v["payload"];
    match p.get("type").and_then(|t| t.as_str()) {
        Some("message") => p.get("role").and_then(|r| r.as_str()) == Some("assistant"),
        Some(
            "function_call" | "custom_tool_call" | "local_shell_call" | "reasoning"
            | "web_search_call" | "tool_search_call",
        ) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    const ID: &str = "01a20f6c-5deb-7bf0-b88f-0458697f3e9a";

    #[test]
    fn leading_codex_word_is_dropped() {
        assert_eq!(
            drop_codex_word(&v(&["codex", "exec", "hi"])),
            v(&["exec", "hi"])
        );
        assert_eq!(
            drop_codex_word(&v(&["exec", "codex"])),
            v(&["exec", "codex"])
        );
        assert!(drop_codex_word(&[]).is_empty());
    }

    #[test]
    fn interactive_detection() {
        assert!(is_interactive(&[]));
        assert!(is_interactive(&v(&["fix the bug"])));
        assert!(is_interactive(&v(&["-m", "gpt-5", "resume", "--last"])));
        assert!(is_interactive(&v(&["-c", "model=x", "--search"])));
        assert!(!is_interactive(&v(&["exec", "hi"])));
        assert!(!is_interactive(&v(&["-c", "exec=1", "e", "hi"])));
        assert!(!is_interactive(&v(&["--version"])));
        assert!(!is_interactive(&v(&["login", "status"])));
    }

    #[test]
    fn interactive_lines_become_resume_of_the_session() {
        assert_eq!(continue_args(&[], ID), Some(v(&["resume", ID])));
        assert_eq!(
            continue_args(&v(&["-m", "gpt-5", "--search", "fix the bug"]), ID),
            Some(v(&["-m", "gpt-5", "--search", "resume", ID]))
        );
        assert_eq!(
            continue_args(&v(&["-c", "a=b", "resume", "--last"]), ID),
            Some(v(&["-c", "a=b", "resume", ID]))
        );
    }

    #[test]
    fn exec_lines_become_exec_resume_with_the_prompt() {
        assert_eq!(
            continue_args(
                &v(&[
                    "-c",
                    "x=1",
                    "exec",
                    "--skip-git-repo-check",
                    "-m",
                    "m",
                    "do it"
                ]),
                ID
            ),
            Some(v(&[
                "-c",
                "x=1",
                "exec",
                "--skip-git-repo-check",
                "-m",
                "m",
                "resume",
                ID,
                "do it"
            ]))
        );
        assert_eq!(
            continue_args(&v(&["e", "--json", "hi"]), ID),
            Some(v(&["exec", "--json", "resume", ID, "hi"]))
        );
    }

    #[test]
    fn unsafe_lines_are_left_alone() {
        for a in [
            v(&["exec", "-"]),
            v(&["exec"]),
            v(&["exec", "--json"]),
            v(&["exec", "resume", "--last", "go on"]),
            v(&["exec", "two", "prompts"]),
            v(&["review"]),
            v(&["login"]),
            v(&["--help"]),
        ] {
            assert_eq!(continue_args(&a, ID), None, "{a:?}");
        }
        assert_eq!(continue_args(&[], "not-a-uuid"), None);
    }

    #[test]
    fn session_ids_from_rollout_names() {
        assert_eq!(
            session_id_from_rollout_name(&format!("rollout-2026-11-24T21-18-09-{ID}.jsonl")),
            Some(ID)
        );
        assert_eq!(session_id_from_rollout_name("rollout-x.jsonl"), None);
        assert_eq!(session_id_from_rollout_name("notes.jsonl"), None);
    }

    #[test]
    fn model_output_lines() {
        assert!(rollout_line_is_model_output(
            r#"{"type":"response_item","payload":{"type":"message","role":"assistant","content":[]}}"#
        ));
        assert!(rollout_line_is_model_output(
            r#"{"type":"response_item","payload":{"type":"function_call","name":"shell"}}"#
        ));
        assert!(!rollout_line_is_model_output(
            r#"{"type":"response_item","payload":{"type":"message","role":"user","content":[]}}"#
        ));
        assert!(!rollout_line_is_model_output(
            r#"{"type":"event_msg","payload":{"type":"task_started"}}"#
        ));
        assert!(!rollout_line_is_model_output("not json"));
    }
}
