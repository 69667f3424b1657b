//! What `cao gateway enable` / `disable` do with a variable in the environment of GUI apps
//! (`launchctl setenv` on macOS, the systemd user manager on Linux): which earlier value to
//! remember, and what to put back. Pure: the edge reads the current value and runs the tools.

/// What `disable` should do with the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restore {
    /// Put this earlier value back.
    Set(String),
    /// It was not set before `enable`: unset it.
    Unset,
    /// Someone changed it since `enable` (or it is gone): leave it alone.
    Leave,
}

/// The value `enable` should remember as "before cao", given the value it finds now and, when
/// cao already exported it once, what it recorded then (`recorded`: the value cao set and the
/// one it replaced). Re-running `enable` keeps the first earlier value: the current value is
/// then cao's own.
pub fn previous_to_keep(
    current: Option<&str>,
    recorded: Option<(&str, Option<&str>)>,
) -> Option<String> {
    match recorded {
        Some((set, previous)) if current == Some(set) => previous.map(str::to_string),
        _ => current.map(str::to_string),
    }
}

/// What `disable` does, given the value now, the one cao set, and the one it replaced.
pub fn restore(current: Option<&str>, set: &str, previous: Option<&str>) -> Restore {
    if current != Some(set) {
        return Restore::Leave;
    }
    match previous {
        Some(p) if p == set => Restore::Leave,
        Some(p) => Restore::Set(p.to_string()),
        None => Restore::Unset,
    }
}

/// The value of `name` in `systemctl --user show-environment`'s output (`NAME=value` lines;
/// systemd writes values with special characters as `$'...'` with backslash escapes).
pub fn value_in_show_environment(output: &str, name: &str) -> Option<String> {
    let raw = output
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))?;
    match raw.strip_prefix("$'").and_then(|r| r.strip_suffix('\'')) {
        Some(quoted) => Some(unescape(quoted)),
        None => Some(raw.to_string()),
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// True when `value` can be written as an `environment.d` line as it is (no expansion,
/// quoting or line break would change it).
pub fn fits_environment_d(value: &str) -> bool {
    !value.is_empty()
        && !value
            .chars()
            .any(|c| matches!(c, '$' | '\\' | '"' | '\'' | '\n' | '\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "/d/tls/codex-ca-bundle.pem";

    #[test]
    fn the_first_earlier_value_is_kept_across_enables() {
        assert_eq!(previous_to_keep(None, None), None);
        assert_eq!(
            previous_to_keep(Some("/corp.pem"), None).as_deref(),
            Some("/corp.pem")
        );
        // Enabled before: the current value is cao's, the recorded earlier one stays.
        assert_eq!(
            previous_to_keep(Some(OURS), Some((OURS, Some("/corp.pem")))).as_deref(),
            Some("/corp.pem")
        );
        assert_eq!(previous_to_keep(Some(OURS), Some((OURS, None))), None);
        // Changed by the user since: that is the earlier value now.
        assert_eq!(
            previous_to_keep(Some("/new.pem"), Some((OURS, None))).as_deref(),
            Some("/new.pem")
        );
    }

    #[test]
    fn disable_puts_back_what_was_there_unless_it_changed_since() {
        assert_eq!(restore(Some(OURS), OURS, None), Restore::Unset);
        assert_eq!(
            restore(Some(OURS), OURS, Some("/corp.pem")),
            Restore::Set("/corp.pem".into())
        );
        assert_eq!(restore(Some("/other.pem"), OURS, None), Restore::Leave);
        assert_eq!(restore(None, OURS, Some("/corp.pem")), Restore::Leave);
        assert_eq!(restore(Some(OURS), OURS, Some(OURS)), Restore::Leave);
    }

    #[test]
    fn show_environment_values_are_read_plain_and_quoted() {
        let out = "HOME=/home/u\nCODEX_CA_CERTIFICATE_X=no\nCODEX_CA_CERTIFICATE=/a b/c.pem\n";
        assert_eq!(
            value_in_show_environment(out, "CODEX_CA_CERTIFICATE").as_deref(),
            Some("/a b/c.pem")
        );
        let quoted = "CODEX_CA_CERTIFICATE=$'/it\\'s/\\\\x.pem'\n";
        assert_eq!(
            value_in_show_environment(quoted, "CODEX_CA_CERTIFICATE").as_deref(),
            Some("/it's/\\x.pem")
        );
        assert_eq!(
            value_in_show_environment("HOME=/h\n", "CODEX_CA_CERTIFICATE"),
            None
        );
    }

    #[test]
    fn only_plain_values_go_into_environment_d() {
        assert!(fits_environment_d(
            "/home/u/my data/tls/codex-ca-bundle.pem"
        ));
        assert!(!fits_environment_d("/home/$USER/x"));
        assert!(!fits_environment_d("/a\nB=c"));
        assert!(!fits_environment_d(""));
    }
}
