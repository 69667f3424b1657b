//! One vocabulary of account states (issue 15): `cao list`, `cao list --json`, the doctor,
//! `cao gateway status` and the dashboard's table all name an account's state with the same
//! word (`policy::account::State`: ready, full, cooling, spent, needs-login, unreadable), not
//! the TypeScript tool's `logged-in`/`not-logged-in`; `list --json` keeps its `loggedIn` key.

use serde_json::{Value, json};

use crate::common::{TestEnv, now_ms, now_secs};

/// One account in each state the files can tell: ready, full (99 %), spent (100 %), cooling,
/// needs-login (a refresh rejected for good) and never logged in.
fn one_of_each() -> TestEnv {
    let env = TestEnv::new();
    let exp = now_secs() + 86_400;
    for (name, acc) in [
        ("fresh", "acc-1"),
        ("full", "acc-2"),
        ("spent", "acc-3"),
        ("cooling", "acc-4"),
        ("rejected", "acc-5"),
    ] {
        env.add_logged_in(name, acc, exp);
    }
    env.cao()
        .args(["add", "never", "--no-login"])
        .assert()
        .success();
    let now = now_ms();
    let used = |percent: f64| {
        json!({"windows": [{"family": "codex", "slot": "primary", "usedPercent": percent,
                            "windowMinutes": 300, "resetsAtMs": now + 3_600_000}],
               "seenAtMs": now, "source": "headers"})
    };
    let statuses = json!({"statuses": {
        "full": {"usage": used(99.0)},
        "spent": {"usage": used(100.0)},
        "cooling": {"cooldownUntilMs": now + 3_600_000, "lastQuotaAtMs": now - 60_000,
                    "lastError": "usage_limit_reached"},
        "rejected": {"needsLogin": true},
    }});
    std::fs::write(
        env.data_dir().join("account_status.json"),
        serde_json::to_string_pretty(&statuses).unwrap(),
    )
    .unwrap();
    env
}

const WORDS: [(&str, &str); 6] = [
    ("fresh", "ready"),
    ("full", "full"),
    ("spent", "spent"),
    ("cooling", "cooling"),
    ("rejected", "needs-login"),
    ("never", "needs-login"),
];

fn stdout(env: &TestEnv, args: &[&str]) -> String {
    let out = env.cao().args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// The line of `text` about account `name` (its name right after the `*`/space marker).
fn line_of<'t>(text: &'t str, name: &str) -> &'t str {
    text.lines()
        .find(|l| {
            let rest = l.trim_start().trim_start_matches('*').trim_start();
            rest.strip_prefix(name)
                .is_some_and(|r| r.starts_with([' ', ':']))
        })
        .unwrap_or_else(|| panic!("no line about {name}: {text}"))
}

#[test]
fn list_says_each_state_in_the_words_every_other_view_uses() {
    let env = one_of_each();
    assert_eq!(
        stdout(&env, &["list"]),
        "* fresh (ready)\n  full (full)\n  spent (spent)\n  cooling (cooling)\n  \
         rejected (needs-login)\n  never (needs-login)\n"
    );
    let items: Vec<Value> = serde_json::from_str(&stdout(&env, &["list", "--json"])).unwrap();
    let by_name = |n: &str| items.iter().find(|i| i["name"] == n).unwrap().clone();
    for (name, word) in WORDS {
        assert_eq!(by_name(name)["state"], word, "{name}: {items:?}");
    }
    // The keys scripts already read stay.
    assert_eq!(
        by_name("fresh"),
        json!({"name": "fresh", "isDefault": true, "loggedIn": true, "state": "ready"})
    );
    assert_eq!(by_name("never")["loggedIn"], false);
    assert_eq!(
        by_name("rejected")["loggedIn"],
        true,
        "logged in, refresh rejected"
    );

    let doctor = stdout(&env, &["status", "--doctor"]);
    let gateway = stdout(&env, &["gateway", "status"]);
    for (name, word) in WORDS {
        let l = line_of(&doctor, name);
        assert!(l.ends_with(&format!("({word})")), "doctor: {l:?}\n{doctor}");
        let l = line_of(&gateway, name);
        assert!(
            l.split_whitespace().nth(1).unwrap().starts_with(word),
            "gateway status: {l:?}\n{gateway}"
        );
    }
    // No view says the old words.
    for args in [
        &["list"][..],
        &["status", "--doctor"],
        &["gateway", "status"],
    ] {
        let text = stdout(&env, args);
        assert!(
            !text.contains("logged-in"),
            "{args:?} still says logged-in: {text}"
        );
    }
}
