//! Account names: `^[A-Za-z0-9_-]{1,64}$`, so a name is always a single safe path component.

/// The longest name cao accepts.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `name` is a valid account name.
pub fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `name` may be given to a new account: valid, and not starting with `-` (it would
/// read as an option on every later command line: `cao use -x`).
pub fn is_valid_new(name: &str) -> bool {
    is_valid(name) && !name.starts_with('-')
}

/// An existing name equal to `name` but for letter case (`Work` vs `work`): on macOS and
/// Windows the two are one directory, so the second would share the first's login.
pub fn case_twin<'a>(existing: &'a [String], name: &str) -> Option<&'a str> {
    existing
        .iter()
        .find(|e| e.as_str() != name && e.eq_ignore_ascii_case(name))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_names_do_not_start_with_a_dash_or_twin_another_by_case() {
        assert!(is_valid_new("work-2"));
        assert!(!is_valid_new("-work"));
        assert!(is_valid("-work"), "still read from an old registry");
        let existing = vec!["Work".to_string(), "home".to_string()];
        assert_eq!(case_twin(&existing, "work"), Some("Work"));
        assert_eq!(case_twin(&existing, "Work"), None);
        assert_eq!(case_twin(&existing, "HOME"), Some("home"));
        assert_eq!(case_twin(&existing, "other"), None);
    }

    #[test]
    fn accepts_plain_names() {
        for n in ["a", "work", "Work_2", "a-b", &"x".repeat(64)] {
            assert!(is_valid(n), "{n}");
        }
    }

    #[test]
    fn refuses_paths_spaces_and_overlong() {
        for n in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a b",
            "é",
            "a.b",
            "-\n",
            &"x".repeat(65),
            "a\0",
        ] {
            assert!(!is_valid(n), "{n:?}");
        }
    }
}
