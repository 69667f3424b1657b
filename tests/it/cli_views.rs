//! Views on the real binary: the shareable report, one account in full, and the dashboard and the
//! demo fitted to a real terminal's width.

use crate::common::{TestEnv, now_secs};

#[test]
fn the_shareable_report_uses_absolute_times_and_leaves_out_who_and_where() {
    let env = TestEnv::new();
    env.add_logged_in("work", "acc-secret", now_secs() + 5 * 86_400);
    let out = env.cao().args(["status", "--report"]).output().unwrap();
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(!md.contains(" in 23h") && !md.contains(" ago"), "{md}");
    assert!(md.contains("1 account: 1 ok."), "{md}");
    let out = env
        .cao()
        .args(["status", "--report", "json"])
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout);
    for secret in [
        "work@example.com",
        "acc-secret",
        "org-",
        &*env.data_dir().to_string_lossy(),
    ] {
        assert!(!json.contains(secret), "{secret} leaked: {json}");
    }
    let out = env
        .cao()
        .args(["status", "--report", "json", "--private"])
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        json.contains("work@example.com") && json.contains("acc-secret"),
        "{json}"
    );
}

#[test]
fn status_with_a_name_shows_that_account_in_full() {
    let env = TestEnv::new();
    env.add_logged_in("work", "acc-w", now_secs() + 86_400);
    env.add_logged_in("home", "acc-h", now_secs() + 86_400);
    let out = env.cao().args(["status", "home"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("home") && text.contains("home@example.com"),
        "{text}"
    );
    assert!(!text.contains("work"), "{text}");
    let out = env
        .cao()
        .args(["status", "home", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    env.cao()
        .args(["status", "nobody"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("does not exist"));
}

/// Lines of a terminal transcript with escapes and carriage returns removed.
fn screen_lines(out: &str) -> Vec<String> {
    let plain = String::from_utf8(strip_ansi(out.as_bytes())).unwrap();
    plain
        .split('\n')
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

fn strip_ansi(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0x1b {
            i += 1;
            if i < bytes.len() && bytes[i] == b'[' {
                i += 1;
                while i < bytes.len() && !(0x40..=0x7e).contains(&bytes[i]) {
                    i += 1;
                }
            }
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

#[test]
fn the_dashboard_uses_the_real_terminal_width_and_never_cuts_a_value() {
    use crate::common::pty::Pty;
    let env = TestEnv::new();
    env.add_logged_in("work", "acc-w", now_secs() + 86_400 * 5);
    env.add_logged_in(
        "personal-with-a-long-name",
        "acc-p",
        now_secs() + 86_400 * 5,
    );
    for cols in [60u16, 80, 200] {
        let (out, code) = Pty::spawn(&env, &["status"], 40, cols, &[]).finish();
        assert_eq!(code, 0, "{out}");
        let lines = screen_lines(&out);
        for l in &lines {
            assert!(
                l.chars().count() <= usize::from(cols),
                "{cols} columns: {l:?}\n{out}"
            );
        }
        let text = lines.join("\n");
        assert!(!text.contains('…'), "nothing cut at {cols}: {text}");
        assert!(
            text.contains(&*env.data_dir().to_string_lossy()) || cols < 80,
            "{text}"
        );
        if cols < 70 {
            assert!(!text.contains('│'), "frameless below 70 columns: {text}");
        } else {
            assert!(text.contains('│'), "{text}");
        }
    }
}

#[test]
fn many_accounts_are_one_row_each() {
    let env = TestEnv::new();
    for i in 0..40 {
        env.add_logged_in(
            &format!("acct-{i:02}"),
            &format!("acc-{i}"),
            now_secs() + 86_400 * 5,
        );
    }
    let out = env.cao().args(["status", "--pretty"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 43, "{text}");
    assert!(text.contains("40 accounts: 40 ok"), "{text}");
}

#[test]
fn the_demo_fits_an_80_column_terminal() {
    use crate::common::pty::Pty;
    let env = TestEnv::new();
    let (out, code) = Pty::spawn(&env, &["demo"], 50, 80, &[]).finish();
    assert_eq!(code, 0, "{out}");
    // The drawn parts (the dashboard's frame and rows) fit; prose lines may be wrapped by the
    // terminal between words.
    let drawn: Vec<String> = screen_lines(&out)
        .into_iter()
        .filter(|l| l.contains('│') || l.contains('─'))
        .collect();
    assert!(!drawn.is_empty(), "{out}");
    for l in drawn {
        assert!(
            l.chars().count() <= 80,
            "{} columns: {l:?}",
            l.chars().count()
        );
    }
}
