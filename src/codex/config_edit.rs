//! Pure edits of Codex's `config.toml` that route Codex through the cao gateway, and their undo.
//!
//! How Codex is routed (verified with Codex 0.169.0, see README "Routing Codex through the
//! gateway"): the built-in `openai` provider is kept and only its URLs move, with the two root
//! keys `openai_base_url` (model traffic: `/responses`, `/models`) and `chatgpt_base_url`
//! (every other backend call). A custom `model_provider = "cao"` also routes, but Codex files
//! sessions under their provider id: `codex resume` then hides every earlier session, and
//! resuming one by id fails with "Cannot change this thread's model provider". Keeping `openai`
//! avoids both. The price: with the built-in provider Codex first tries a WebSocket upgrade on
//! `GET /responses`; the gateway answers 426 and Codex uses HTTP for the rest of the session.
//!
//! Nothing here touches the disk. [`enable`] returns the new text plus a [`RoutingRecord`] of
//! exactly what it added or replaced; [`disable`] undoes only that, restores replaced values, and
//! leaves alone any key the user changed since. When the file is untouched since `enable`,
//! `disable` gives back the original bytes.

use serde::{Deserialize, Serialize};
use toml_edit::{DocumentMut, Item, Value};

/// The provider id whose sessions `codex resume` shows by default; routing keeps it.
pub(crate) const BUILTIN_PROVIDER: &str = "openai";
/// Root key for the built-in provider's base URL (model traffic).
pub(crate) const OPENAI_BASE_URL_KEY: &str = "openai_base_url";
/// Root key for the ChatGPT backend base URL (accounts, plugins, analytics, usage, ...).
pub(crate) const CHATGPT_BASE_URL_KEY: &str = "chatgpt_base_url";
/// Root key that selects the provider.
pub(crate) const MODEL_PROVIDER_KEY: &str = "model_provider";
/// Comment put after every key `enable` adds, so people reading the file know where it came from.
pub(crate) const ADDED_COMMENT: &str =
    " # added by `cao gateway enable`; `cao gateway disable` removes it";

/// Format version of [`RoutingRecord`].
pub(crate) const RECORD_VERSION: u32 = 1;

/// Why a config.toml could not be edited. The caller adds the file path.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("it is not valid TOML ({0}); fix it or move it away, then run this again")]
    Parse(String),
    #[error("its `{0}` is a table, not a value; remove or rename it, then run this again")]
    NotAValue(String),
}

/// What `enable` changed, so that `disable` can undo exactly that. Stored as JSON next to the
/// config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoutingRecord {
    pub version: u32,
    /// Gateway URL the file points at.
    pub base_url: String,
    /// The file's text before `enable` (`None`: there was no file).
    pub original: Option<String>,
    /// The exact text `enable` wrote; if the file still reads this, `disable` restores `original`.
    pub written: String,
    /// Every root key `enable` set, in order.
    pub changes: Vec<Change>,
}

/// One root key `enable` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub key: String,
    /// The string value cao set.
    pub value: String,
    /// The value it replaced, as TOML (`None`: cao added the key).
    pub previous: Option<String>,
}

/// Result of [`enable`].
#[derive(Debug, Clone)]
pub struct Enabled {
    /// New file text.
    pub text: String,
    pub record: RoutingRecord,
    /// Things the user should know (a provider switched, a profile that overrides the routing).
    pub notes: Vec<String>,
}

/// Result of [`disable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    /// New file text; `None` means the file should be removed (cao created it and it holds
    /// nothing else).
    pub text: Option<String>,
    /// Keys left as they are because the user changed them after `enable`.
    pub left: Vec<String>,
    /// True when the result is byte-for-byte the text from before `enable`.
    pub exact: bool,
}

/// The root keys and values that route Codex to `base_url`.
///
/// `chatgpt_base_url` gets `/backend-api` appended: Codex picks its path style from that URL,
/// and only a URL containing `/backend-api` makes it call its normal ChatGPT paths
/// (`/backend-api/wham/...`), which the gateway forwards to the same paths upstream. Without it
/// Codex switches to `/api/codex/...` paths that the ChatGPT backend behind the gateway does not
/// serve.
pub(crate) fn routing_settings(base_url: &str) -> [(&'static str, String); 2] {
    [
        (OPENAI_BASE_URL_KEY, base_url.to_string()),
        (CHATGPT_BASE_URL_KEY, chatgpt_base_url(base_url)),
    ]
}

/// The `chatgpt_base_url` that routes Codex's non-model calls through the gateway at `base_url`.
pub(crate) fn chatgpt_base_url(base_url: &str) -> String {
    format!("{}/backend-api", base_url.trim_end_matches('/'))
}

/// The same routing as `-c key=value` overrides for one Codex run (they go before the
/// subcommand): provider pinned to the built-in one, both URLs at `base_url`. No file changes.
pub fn cli_overrides(base_url: &str) -> Vec<String> {
    let mut args = vec![
        "-c".to_string(),
        format!("{MODEL_PROVIDER_KEY}={}", toml_string(BUILTIN_PROVIDER)),
    ];
    for (key, value) in routing_settings(base_url) {
        args.push("-c".to_string());
        args.push(format!("{key}={}", toml_string(&value)));
    }
    args
}

/// Route the config text `current` (`None`: no file yet) to `base_url`.
///
/// `previous` is the record of an earlier `enable` still in force: its changes are undone first
/// (in memory) so that enabling twice, or with a new URL, stacks nothing and `disable` still
/// returns to the text from before the first `enable`.
pub fn enable(
    current: Option<&str>,
    previous: Option<&RoutingRecord>,
    base_url: &str,
) -> Result<Enabled, EditError> {
    let base: Option<String> = match previous {
        Some(record) => disable(current, record)?.text,
        None => current.map(str::to_string),
    };
    let (bom, body) = split_bom(base.as_deref().unwrap_or(""));
    let mut doc: DocumentMut = body
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Parse(one_line(&e.to_string())))?;
    let mut changes = Vec::new();
    let mut notes = Vec::new();

    // A provider other than the built-in one would bypass the URLs below.
    if let Some(item) = doc.get(MODEL_PROVIDER_KEY) {
        let provider = item.as_str().map(str::to_string);
        if provider.as_deref() != Some(BUILTIN_PROVIDER) {
            let shown = provider.unwrap_or_else(|| item.to_string().trim().to_string());
            notes.push(format!(
                "model_provider was {shown:?}; it is \"{BUILTIN_PROVIDER}\" while routed (`cao gateway disable` puts it back)"
            ));
            changes.push(set_root_string(
                &mut doc,
                MODEL_PROVIDER_KEY,
                BUILTIN_PROVIDER,
            )?);
        }
    }
    for (key, value) in routing_settings(base_url) {
        changes.push(set_root_string(&mut doc, key, &value)?);
    }
    notes.extend(profile_notes(&doc));
    if doc
        .get("model_providers")
        .and_then(|p| p.get(BUILTIN_PROVIDER))
        .is_some()
    {
        notes.push(format!(
            "config.toml defines [model_providers.{BUILTIN_PROVIDER}], which Codex refuses to start with (\"reserved built-in provider IDs\"); the TypeScript CAO's `gateway enable` writes it: remove that table"
        ));
    }

    let text = finish(&doc, bom, base.as_deref().unwrap_or(""));
    Ok(Enabled {
        record: RoutingRecord {
            version: RECORD_VERSION,
            base_url: base_url.to_string(),
            original: base,
            written: text.clone(),
            changes,
        },
        text,
        notes,
    })
}

/// Undo `record` on the config text `current` (`None`: the file is gone).
pub fn disable(current: Option<&str>, record: &RoutingRecord) -> Result<Disabled, EditError> {
    let Some(current) = current else {
        // The user removed the file: there is nothing of ours left to undo.
        return Ok(Disabled {
            text: None,
            left: Vec::new(),
            exact: record.original.is_none(),
        });
    };
    if current == record.written {
        return Ok(Disabled {
            text: record.original.clone(),
            left: Vec::new(),
            exact: true,
        });
    }
    let (bom, body) = split_bom(current);
    let mut doc: DocumentMut = body
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Parse(one_line(&e.to_string())))?;
    let mut left = Vec::new();
    for change in record.changes.iter().rev() {
        let root = doc.as_table_mut();
        let ours = match root.get(&change.key) {
            Some(Item::Value(v)) => v.as_str() == Some(change.value.as_str()),
            Some(_) => false,
            // Removed by the user: nothing to undo, and a replaced value stays removed too.
            None => continue,
        };
        if !ours {
            left.push(change.key.clone());
            continue;
        }
        match &change.previous {
            None => {
                root.remove(&change.key);
            }
            Some(previous) => {
                let mut restored: Value = previous.parse().map_err(|e: toml_edit::TomlError| {
                    EditError::Parse(format!(
                        "the saved value of `{}` does not parse: {}",
                        change.key,
                        one_line(&e.to_string())
                    ))
                })?;
                if let Some(Item::Value(v)) = root.get_mut(&change.key) {
                    *restored.decor_mut() = v.decor().clone();
                    *v = restored;
                }
            }
        }
    }
    left.reverse();
    let text = finish(&doc, bom, current);
    let text = if record.original.is_none() && text.trim().is_empty() {
        None
    } else {
        Some(text)
    };
    let exact = text == record.original;
    Ok(Disabled { text, left, exact })
}

/// Set root `key` to the string `value`, keeping the comments around an existing value.
fn set_root_string(doc: &mut DocumentMut, key: &str, value: &str) -> Result<Change, EditError> {
    let root = doc.as_table_mut();
    let previous = match root.get_mut(key) {
        Some(Item::Value(v)) => {
            let previous = bare(v);
            let decor = v.decor().clone();
            *v = Value::from(value);
            *v.decor_mut() = decor;
            Some(previous)
        }
        Some(Item::None) | None => {
            let mut v = Value::from(value);
            v.decor_mut().set_suffix(ADDED_COMMENT);
            root.insert(key, Item::Value(v));
            None
        }
        Some(_) => return Err(EditError::NotAValue(key.to_string())),
    };
    Ok(Change {
        key: key.to_string(),
        value: value.to_string(),
        previous,
    })
}

/// Warn when the selected profile sets a key that would win over the root routing keys.
fn profile_notes(doc: &DocumentMut) -> Vec<String> {
    let Some(profile) = doc.get("profile").and_then(Item::as_str) else {
        return Vec::new();
    };
    let Some(table) = doc
        .get("profiles")
        .and_then(|p| p.get(profile))
        .and_then(Item::as_table_like)
    else {
        return Vec::new();
    };
    [MODEL_PROVIDER_KEY, OPENAI_BASE_URL_KEY, CHATGPT_BASE_URL_KEY]
        .into_iter()
        .filter(|key| table.contains_key(key))
        .map(|key| {
            format!("the selected profile {profile:?} sets `{key}`, which wins over the gateway routing; remove it from [profiles.{profile}] to route that profile")
        })
        .collect()
}

/// A value's TOML text without the whitespace and comments around it.
fn bare(v: &Value) -> String {
    let mut v = v.clone();
    v.decor_mut().clear();
    v.to_string()
}

/// A TOML basic string for `s`.
fn toml_string(s: &str) -> String {
    bare(&Value::from(s))
}

/// Render `doc`, putting back the BOM and the line ending style of `like`.
fn finish(doc: &DocumentMut, bom: &str, like: &str) -> String {
    let mut text = doc.to_string();
    if all_crlf(like) {
        text = to_crlf(&text);
    }
    format!("{bom}{text}")
}

/// True when `text` has line breaks and every one is `\r\n` (a mixed file is left as it is).
fn all_crlf(text: &str) -> bool {
    let crlf = text.matches("\r\n").count();
    crlf > 0 && crlf == text.matches('\n').count()
}

/// Turn every lone `\n` into `\r\n` (new lines toml_edit wrote into a CRLF file).
fn to_crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut prev = '\0';
    for c in text.chars() {
        if c == '\n' && prev != '\r' {
            out.push('\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

fn split_bom(text: &str) -> (&str, &str) {
    match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[path = "config_edit_tests.rs"]
mod tests;
