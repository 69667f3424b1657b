//! Which account to try first: the default, then registry order (the cooldowns are
//! [`super::route::choose`]'s to weigh).

/// The rotation order: the default account first, then the others in registry order.
pub fn rotation<'a>(accounts: &'a [String], default: Option<&str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::with_capacity(accounts.len());
    if let Some(d) = default.and_then(|d| accounts.iter().find(|a| a.as_str() == d)) {
        out.push(d);
    }
    out.extend(
        accounts
            .iter()
            .map(String::as_str)
            .filter(|a| Some(*a) != default),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_first_then_registry_order() {
        let acc = names(&["a", "b", "c"]);
        assert_eq!(rotation(&acc, Some("b")), vec!["b", "a", "c"]);
        assert_eq!(rotation(&acc, None), vec!["a", "b", "c"]);
        assert_eq!(rotation(&acc, Some("zzz")), vec!["a", "b", "c"]);
        assert!(rotation(&[], Some("a")).is_empty());
    }
}
