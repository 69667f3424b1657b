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

#[cfg(test)]
mod tests {
    use super::*;

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
