use super::*;

const URL: &str = "http://127.0.0.1:4319";

fn on(text: Option<&str>) -> Enabled {
    enable(text, None, URL).unwrap()
}

fn root_str<'a>(doc: &'a DocumentMut, key: &str) -> Option<&'a str> {
    doc.as_table().get(key).and_then(Item::as_str)
}

/// The enabled text parses, and the routing keys are root keys with the gateway URL.
fn assert_routed(text: &str) -> DocumentMut {
    let doc: DocumentMut = text.parse().unwrap();
    assert_eq!(root_str(&doc, OPENAI_BASE_URL_KEY), Some(URL), "{text}");
    assert_eq!(
        root_str(&doc, CHATGPT_BASE_URL_KEY),
        Some(chatgpt_base_url(URL).as_str()),
        "{text}"
    );
    doc
}

fn round_trip(original: &str) {
    let e = on(Some(original));
    assert_routed(&e.text);
    let d = disable(Some(&e.text), &e.record).unwrap();
    assert_eq!(d.text.as_deref(), Some(original));
    assert!(d.exact);
    assert!(d.left.is_empty());
}

#[test]
fn missing_file_is_created_and_removed_again() {
    let e = on(None);
    assert_routed(&e.text);
    assert!(e.text.contains(ADDED_COMMENT.trim()));
    assert_eq!(e.record.original, None);
    let d = disable(Some(&e.text), &e.record).unwrap();
    assert_eq!(d.text, None, "cao created the file, so disable removes it");
    assert!(d.exact);
}

#[test]
fn empty_existing_file_stays_an_empty_file() {
    round_trip("");
}

#[test]
fn comments_order_and_other_keys_survive() {
    let original = "# my Codex settings\nmodel = \"o3\" # the good one\n\n# UI\n[tui]\nnotifications = true\n\n[mcp_servers.docs]\ncommand = \"docs-mcp\"\nargs = [\"--port\", \"1\"] # trailing\n";
    let e = on(Some(original));
    let doc = assert_routed(&e.text);
    assert_eq!(root_str(&doc, "model"), Some("o3"));
    for line in original.lines() {
        assert!(e.text.contains(line), "lost {line:?} in\n{}", e.text);
    }
    // Root keys land before the first table (where TOML root keys must be).
    let first_table = e.text.find("[tui]").unwrap();
    assert!(e.text.find(OPENAI_BASE_URL_KEY).unwrap() < first_table);
    round_trip(original);
}

#[test]
fn existing_model_providers_table_is_left_alone() {
    let original = "model = \"o3\"\n\n[model_providers.azure]\nname = \"Azure\"\nbase_url = \"https://x.openai.azure.com/openai\"\nenv_key = \"AZURE_KEY\"\n";
    let e = on(Some(original));
    let doc = assert_routed(&e.text);
    let azure = doc["model_providers"]["azure"].as_table().unwrap();
    assert_eq!(
        azure["base_url"].as_str(),
        Some("https://x.openai.azure.com/openai")
    );
    assert!(e.text.ends_with("env_key = \"AZURE_KEY\"\n"), "{}", e.text);
    round_trip(original);
}

#[test]
fn inline_model_providers_table_is_left_alone() {
    let original = "model_providers = { local = { name = \"Local\", base_url = \"http://localhost:1234/v1\" } }\napproval_policy = \"never\"\n";
    let e = on(Some(original));
    assert_routed(&e.text);
    assert!(e.text.starts_with(
        "model_providers = { local = { name = \"Local\", base_url = \"http://localhost:1234/v1\" } }\n"
    ));
    round_trip(original);
}

#[test]
fn dotted_keys_are_left_alone() {
    let original = "model_providers.local.name = \"Local\"\nmodel_providers.local.base_url = \"http://localhost:1234/v1\"\ntui.notifications = true\n";
    let e = on(Some(original));
    let doc = assert_routed(&e.text);
    assert_eq!(
        doc["model_providers"]["local"]["name"].as_str(),
        Some("Local")
    );
    for line in original.lines() {
        assert!(e.text.contains(line), "lost {line:?} in\n{}", e.text);
    }
    round_trip(original);
}

#[test]
fn a_user_set_provider_is_switched_and_put_back() {
    let original = "model_provider = \"ollama\" # local models\nmodel = \"llama3\"\n";
    let e = on(Some(original));
    let doc = assert_routed(&e.text);
    assert_eq!(root_str(&doc, MODEL_PROVIDER_KEY), Some(BUILTIN_PROVIDER));
    assert!(
        e.text
            .contains("model_provider = \"openai\" # local models")
    );
    assert_eq!(e.notes.len(), 1);
    assert!(e.notes[0].contains("ollama"));
    round_trip(original);

    // Even with other edits since, the provider comes back with its comment.
    let edited = format!("{}sandbox_mode = \"read-only\"\n", e.text);
    let d = disable(Some(&edited), &e.record).unwrap();
    let text = d.text.unwrap();
    assert!(
        text.contains("model_provider = \"ollama\" # local models"),
        "{text}"
    );
    assert!(!text.contains(OPENAI_BASE_URL_KEY));
}

#[test]
fn an_explicit_openai_provider_is_not_touched() {
    let original = "model_provider = \"openai\"\n";
    let e = on(Some(original));
    assert!(e.notes.is_empty());
    assert!(e.record.changes.iter().all(|c| c.key != MODEL_PROVIDER_KEY));
    round_trip(original);
}

#[test]
fn existing_urls_are_replaced_and_restored() {
    let original = "openai_base_url = 'https://proxy.example/v1' # my proxy\nchatgpt_base_url = \"https://chatgpt.com/backend-api/\"\n";
    let e = on(Some(original));
    assert_routed(&e.text);
    assert!(e.text.contains("# my proxy"));
    assert_eq!(
        e.record.changes[0].previous.as_deref(),
        Some("'https://proxy.example/v1'")
    );
    round_trip(original);

    // With another edit elsewhere the replaced values still come back, quoting and all.
    let edited = format!("model = \"o3\"\n{}", e.text);
    let d = disable(Some(&edited), &e.record).unwrap();
    assert_eq!(
        d.text.as_deref(),
        Some(&*format!("model = \"o3\"\n{original}"))
    );
    assert!(!d.exact);
}

#[test]
fn crlf_files_stay_crlf() {
    let original = "# settings\r\nmodel = \"o3\"\r\n\r\n[tui]\r\nnotifications = true\r\n";
    let e = on(Some(original));
    assert_routed(&e.text);
    assert!(!e.text.replace("\r\n", "").contains('\n'), "{:?}", e.text);
    round_trip(original);
    let edited = format!("{}[features]\r\nx = true\r\n", e.text);
    let d = disable(Some(&edited), &e.record).unwrap();
    assert_eq!(
        d.text.as_deref(),
        Some(&*format!("{original}[features]\r\nx = true\r\n"))
    );
}

#[test]
fn mixed_line_endings_are_not_normalised() {
    let original = "# settings\r\nmodel = \"o3\"\n[tui]\r\nnotifications = true\n";
    let e = on(Some(original));
    assert!(e.text.contains("model = \"o3\"\n"), "{:?}", e.text);
    round_trip(original);
}

#[test]
fn no_trailing_newline_and_bom_survive() {
    round_trip("model = \"o3\"");
    round_trip("\u{feff}model = \"o3\"\n");
    let e = on(Some("\u{feff}model = \"o3\"\n"));
    assert!(e.text.starts_with('\u{feff}'));
}

#[test]
fn unparsable_file_is_an_error() {
    let err = enable(Some("model = \"o3\n[tui"), None, URL).unwrap_err();
    assert!(matches!(err, EditError::Parse(_)));
    assert!(err.to_string().contains("not valid TOML"), "{err}");
}

#[test]
fn a_table_where_a_url_goes_is_an_error() {
    let err = enable(Some("[openai_base_url]\nx = 1\n"), None, URL).unwrap_err();
    assert!(matches!(err, EditError::NotAValue(ref k) if k == OPENAI_BASE_URL_KEY));
}

#[test]
fn enabling_twice_changes_nothing() {
    let original = "# c\nmodel = \"o3\"\n";
    let first = on(Some(original));
    let second = enable(Some(&first.text), Some(&first.record), URL).unwrap();
    assert_eq!(second.text, first.text);
    assert_eq!(second.record, first.record);
    let d = disable(Some(&second.text), &second.record).unwrap();
    assert_eq!(d.text.as_deref(), Some(original));
}

#[test]
fn enabling_with_a_new_url_replaces_the_old_one() {
    let original = "model = \"o3\"\n";
    let first = on(Some(original));
    let other = "http://127.0.0.1:5000";
    let second = enable(Some(&first.text), Some(&first.record), other).unwrap();
    assert!(!second.text.contains(URL));
    assert_eq!(second.text.matches(other).count(), 2, "{}", second.text);
    assert_eq!(second.record.original.as_deref(), Some(original));
    let d = disable(Some(&second.text), &second.record).unwrap();
    assert_eq!(d.text.as_deref(), Some(original));
}

#[test]
fn enabling_again_after_user_edits_keeps_them() {
    let original = "model = \"o3\"\n";
    let first = on(Some(original));
    let edited = format!("{}[tui]\nnotifications = true\n", first.text);
    let second = enable(Some(&edited), Some(&first.record), URL).unwrap();
    assert!(second.text.contains("notifications = true"));
    assert_eq!(second.text.matches(OPENAI_BASE_URL_KEY).count(), 1);
    let d = disable(Some(&second.text), &second.record).unwrap();
    assert_eq!(
        d.text.as_deref(),
        Some("model = \"o3\"\n[tui]\nnotifications = true\n")
    );
}

#[test]
fn other_edits_survive_disable() {
    let original = "# top\nmodel = \"o3\"\n\n[tui]\nnotifications = true\n";
    let e = on(Some(original));
    let edited = e
        .text
        .replace("notifications = true", "notifications = false");
    let d = disable(Some(&edited), &e.record).unwrap();
    assert_eq!(
        d.text.as_deref(),
        Some("# top\nmodel = \"o3\"\n\n[tui]\nnotifications = false\n")
    );
    assert!(!d.exact);
    assert!(d.left.is_empty());
}

#[test]
fn a_url_the_user_changed_is_left_in_place() {
    let e = on(Some("model = \"o3\"\n"));
    let edited = e.text.replacen(
        &format!("openai_base_url = \"{URL}\""),
        "openai_base_url = \"http://elsewhere\"",
        1,
    );
    let d = disable(Some(&edited), &e.record).unwrap();
    let text = d.text.unwrap();
    assert!(text.contains("openai_base_url = \"http://elsewhere\""));
    assert!(!text.contains(CHATGPT_BASE_URL_KEY));
    assert_eq!(d.left, vec![OPENAI_BASE_URL_KEY.to_string()]);
}

#[test]
fn a_removed_file_or_key_needs_no_undo() {
    let e = on(Some("model = \"o3\"\n"));
    let d = disable(None, &e.record).unwrap();
    assert_eq!(d.text, None);
    let without = e
        .text
        .lines()
        .filter(|l| !l.starts_with(CHATGPT_BASE_URL_KEY))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    let d = disable(Some(&without), &e.record).unwrap();
    assert_eq!(d.text.as_deref(), Some("model = \"o3\"\n"));
}

#[test]
fn profile_overrides_are_pointed_out() {
    let original = "profile = \"work\"\n[profiles.work]\nmodel_provider = \"azure\"\n";
    let e = on(Some(original));
    assert_eq!(e.notes.len(), 1, "{:?}", e.notes);
    assert!(e.notes[0].contains("work") && e.notes[0].contains(MODEL_PROVIDER_KEY));
    round_trip(original);
}

#[test]
fn the_typescript_tools_provider_override_is_pointed_out() {
    let original = "model_provider = \"openai\"\n[model_providers.openai]\nname = \"OpenAI\"\nbase_url = \"http://127.0.0.1:4319\"\n";
    let e = on(Some(original));
    assert!(
        e.notes
            .iter()
            .any(|n| n.contains("reserved built-in provider")),
        "{:?}",
        e.notes
    );
    round_trip(original);
}

#[test]
fn record_survives_json() {
    let e = on(Some("model_provider = \"x\"\n"));
    let json = serde_json::to_string(&e.record).unwrap();
    assert!(json.contains("\"baseUrl\""));
    let back: RoutingRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(back, e.record);
}

#[test]
fn cli_overrides_are_valid_toml_assignments() {
    let args = cli_overrides("http://127.0.0.1:4319");
    assert_eq!(
        args,
        [
            "-c",
            "model_provider=\"openai\"",
            "-c",
            "openai_base_url=\"http://127.0.0.1:4319\"",
            "-c",
            "chatgpt_base_url=\"http://127.0.0.1:4319/backend-api\"",
        ]
    );
    for pair in args.iter().skip(1).step_by(2) {
        let doc: DocumentMut = pair.parse().unwrap();
        assert_eq!(doc.iter().count(), 1);
    }
    // Quotes and backslashes in a URL cannot break out of the string.
    let odd = cli_overrides("http://h/\"x\\");
    let doc: DocumentMut = odd[3].parse().unwrap();
    assert_eq!(root_str(&doc, OPENAI_BASE_URL_KEY), Some("http://h/\"x\\"));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    const SNIPPETS: &[&str] = &[
        "# a comment\n",
        "model = \"o3\"\n",
        "model_provider = \"ollama\" # mine\n",
        "openai_base_url = 'https://proxy/v1'\n",
        "approval_policy = \"never\"\n",
        "\n",
        "model_providers.x.name = \"X\"\n",
    ];
    const TABLES: &[&str] = &[
        "[tui]\nnotifications = true\n",
        "# providers\n[model_providers.local]\nname = \"L\"\nbase_url = \"http://l\"\n",
        "[profiles.p]\nmodel = \"o3\"\n",
    ];

    fn config() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(0..SNIPPETS.len(), 0..5),
            proptest::collection::vec(0..TABLES.len(), 0..3),
            any::<bool>(),
        )
            .prop_map(|(roots, tables, crlf)| {
                let mut seen = std::collections::HashSet::new();
                let mut text: String = roots
                    .into_iter()
                    .filter(|i| seen.insert(*i) || SNIPPETS[*i].starts_with(['#', '\n']))
                    .map(|i| SNIPPETS[i])
                    .collect();
                let mut seen = std::collections::HashSet::new();
                text.extend(
                    tables
                        .into_iter()
                        .filter(|i| seen.insert(*i))
                        .map(|i| TABLES[i]),
                );
                if crlf {
                    text.replace('\n', "\r\n")
                } else {
                    text
                }
            })
    }

    proptest! {
        #[test]
        fn enable_then_disable_gives_back_the_original(original in config()) {
            let e = enable(Some(&original), None, URL).unwrap();
            let twice = enable(Some(&e.text), Some(&e.record), URL).unwrap();
            prop_assert_eq!(&twice.text, &e.text);
            let d = disable(Some(&twice.text), &twice.record).unwrap();
            prop_assert_eq!(d.text.as_deref(), Some(original.as_str()));
        }

        #[test]
        fn edits_appended_after_enable_survive_disable(original in config()) {
            let e = enable(Some(&original), None, URL).unwrap();
            let nl = if original.contains("\r\n") { "\r\n" } else { "\n" };
            let sep = if e.text.ends_with('\n') { "" } else { nl };
            let extra = format!("[features]{nl}web_search = true{nl}");
            let edited = format!("{}{sep}{extra}", e.text);
            let d = disable(Some(&edited), &e.record).unwrap();
            let sep = if original.is_empty() || original.ends_with('\n') { "" } else { nl };
            prop_assert_eq!(d.text, Some(format!("{original}{sep}{extra}")));
        }
    }
}
