//! Which account to try first: the default, then registry order, skipping accounts whose
//! cooldown has not ended.

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

/// An account in rotation order with the end of its cooldown, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot<'a> {
    pub name: &'a str,
    pub cooldown_until_ms: Option<i64>,
}

/// The outcome of filtering a rotation by cooldown at `now_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready<'a> {
    /// Accounts usable now, in order.
    pub ready: Vec<&'a str>,
    /// Accounts still cooling, with the time their cooldown ends.
    pub cooling: Vec<(&'a str, i64)>,
}

impl<'a> Ready<'a> {
    /// The cooling account that becomes usable first (earliest end; ties: rotation order).
    pub fn soonest_reset(&self) -> Option<(&'a str, i64)> {
        self.cooling
            .iter()
            .copied()
            .fold(None, |best: Option<(&str, i64)>, c| match best {
                Some(b) if b.1 <= c.1 => Some(b),
                _ => Some(c),
            })
    }
}

/// Split `slots` into those usable at `now_ms` and those cooling.
pub fn split_by_cooldown<'a>(slots: &[Slot<'a>], now_ms: i64) -> Ready<'a> {
    let mut r = Ready {
        ready: Vec::new(),
        cooling: Vec::new(),
    };
    for s in slots {
        match s.cooldown_until_ms.filter(|&u| u > now_ms) {
            Some(until) => r.cooling.push((s.name, until)),
            None => r.ready.push(s.name),
        }
    }
    r
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

    #[test]
    fn cooling_accounts_are_skipped_and_soonest_found() {
        let slots = [
            Slot {
                name: "a",
                cooldown_until_ms: Some(500),
            },
            Slot {
                name: "b",
                cooldown_until_ms: Some(100),
            },
            Slot {
                name: "c",
                cooldown_until_ms: Some(300),
            },
            Slot {
                name: "d",
                cooldown_until_ms: Some(50),
            },
        ];
        let r = split_by_cooldown(&slots, 60);
        assert_eq!(r.ready, vec!["d"]);
        assert_eq!(r.soonest_reset(), Some(("b", 100)));
        let r = split_by_cooldown(&slots, 1_000);
        assert_eq!(r.ready, vec!["a", "b", "c", "d"]);
        assert_eq!(r.soonest_reset(), None);
    }

    #[test]
    fn cooldown_ending_exactly_now_is_ready() {
        let slots = [Slot {
            name: "a",
            cooldown_until_ms: Some(100),
        }];
        assert_eq!(split_by_cooldown(&slots, 100).ready, vec!["a"]);
    }
}
