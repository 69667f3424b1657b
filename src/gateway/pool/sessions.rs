//! Session affinity memory: which account serves which Codex session, bounded in size (least
//! recently used forgotten first), in age (a session unused for [`SESSION_TTL_MS`] is
//! forgotten) and in key length (a key longer than the perimeter accepts is never stored).
//! Time is passed in.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::policy::perimeter::MAX_SESSION_KEY_LEN;

/// Most sessions remembered.
pub const MAX_SESSIONS: usize = 20_000;
/// A session not seen for this long is forgotten (Codex sessions idle overnight start over on
/// whichever account routing picks, which is what a fresh session would get anyway).
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

struct Entry {
    account: Arc<str>,
    last_used_ms: i64,
    /// When it was last used (a stamp from [`SessionMap::bump`]).
    stamp: u64,
    /// The stamp it is filed under in `order` (at most `stamp`: a use does not refile it).
    filed: u64,
}

/// Session key -> account, with LRU order.
///
/// A use only notes its stamp on the entry; `order` is brought up to date when a session must
/// be forgotten (an entry filed under an older stamp than its last use is refiled then), so the
/// one forgotten is still exactly the least recently used, and a request's lookup touches only
/// the hash map (no reordering, no copy of the key).
#[derive(Default)]
pub struct SessionMap {
    entries: HashMap<String, Entry, foldhash::fast::RandomState>,
    /// Filing order: stamp -> key, oldest first; each key once.
    order: BTreeMap<u64, String>,
    next_stamp: u64,
}

impl SessionMap {
    /// The account `key` is pinned to, if it is remembered and fresh; marks it used.
    pub fn get(&mut self, key: &str, now_ms: i64) -> Option<Arc<str>> {
        let stamp = self.bump();
        let entry = self.entries.get_mut(key)?;
        if now_ms - entry.last_used_ms > SESSION_TTL_MS {
            let filed = entry.filed;
            self.entries.remove(key);
            self.order.remove(&filed);
            return None;
        }
        entry.stamp = stamp;
        entry.last_used_ms = now_ms;
        Some(entry.account.clone())
    }

    /// The account `key` is pinned to without marking it used (expired entries count as gone).
    pub fn peek(&self, key: &str, now_ms: i64) -> Option<&str> {
        self.entries
            .get(key)
            .filter(|e| now_ms - e.last_used_ms <= SESSION_TTL_MS)
            .map(|e| &*e.account)
    }

    /// Pin `key` to `account`, forgetting the least recently used session when full. Keys
    /// longer than [`MAX_SESSION_KEY_LEN`] are not remembered.
    pub fn insert(&mut self, key: &str, account: &str, now_ms: i64) {
        if key.len() > MAX_SESSION_KEY_LEN {
            return;
        }
        let stamp = self.bump();
        if let Some(old) = self.entries.remove(key) {
            self.order.remove(&old.filed);
        }
        while self.entries.len() >= MAX_SESSIONS {
            self.forget_oldest();
        }
        self.order.insert(stamp, key.to_string());
        self.entries.insert(
            key.to_string(),
            Entry {
                account: Arc::from(account),
                last_used_ms: now_ms,
                stamp,
                filed: stamp,
            },
        );
    }

    /// Forget the least recently used session: the first filed whose filing is current
    /// (those used since are refiled under their last use on the way).
    fn forget_oldest(&mut self) {
        while let Some((_, key)) = self.order.pop_first() {
            match self.entries.get_mut(&key) {
                Some(e) if e.filed != e.stamp => {
                    e.filed = e.stamp;
                    self.order.insert(e.stamp, key);
                }
                Some(_) => {
                    self.entries.remove(&key);
                    return;
                }
                None => {}
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The account of every remembered session.
    pub fn accounts(&self) -> impl Iterator<Item = &str> {
        self.entries.values().map(|e| &*e.account)
    }

    fn bump(&mut self) -> u64 {
        self.next_stamp += 1;
        self.next_stamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_the_least_recently_used_goes_first() {
        let mut m = SessionMap::default();
        m.insert("a", "acc-1", 0);
        assert_eq!(m.get("a", 1000).as_deref(), Some("acc-1"));
        assert_eq!(m.peek("a", 1000 + SESSION_TTL_MS), Some("acc-1"));
        assert_eq!(m.get("a", 1001 + SESSION_TTL_MS), None);
        assert!(m.is_empty());
        for i in 0..MAX_SESSIONS {
            m.insert(&format!("s{i}"), "acc-1", 0);
        }
        // s0 is used again, so s1 is now the oldest.
        assert!(m.get("s0", 1).is_some());
        m.insert("new", "acc-2", 2);
        assert_eq!(m.len(), MAX_SESSIONS);
        assert!(m.peek("s0", 2).is_some());
        assert!(m.peek("s1", 2).is_none());
        assert_eq!(m.peek("new", 2), Some("acc-2"));
        assert_eq!(m.accounts().filter(|a| *a == "acc-2").count(), 1);
    }

    #[test]
    fn the_one_forgotten_is_exactly_the_least_recently_used() {
        let mut m = SessionMap::default();
        for i in 0..MAX_SESSIONS {
            m.insert(&format!("s{i}"), "acc-1", 0);
        }
        // Used in reverse order: s0 last, so the oldest is now the last one inserted.
        for i in (0..MAX_SESSIONS).rev() {
            assert!(m.get(&format!("s{i}"), 1).is_some());
        }
        let last = MAX_SESSIONS - 1;
        m.insert("new-1", "acc-2", 2);
        assert!(m.peek(&format!("s{last}"), 2).is_none());
        assert!(m.peek(&format!("s{}", last - 1), 2).is_some());
        m.insert("new-2", "acc-2", 2);
        assert!(m.peek(&format!("s{}", last - 1), 2).is_none());
        assert!(m.peek("s0", 2).is_some() && m.peek("new-1", 2).is_some());
        assert_eq!(m.len(), MAX_SESSIONS);
        // Each key is filed once, however often it was used.
        assert_eq!(m.order.len(), m.entries.len());
        // Re-pinning a session keeps one filing of it.
        m.insert("s0", "acc-2", 3);
        assert_eq!(m.order.len(), m.entries.len());
        assert_eq!(m.peek("s0", 3), Some("acc-2"));
    }

    #[test]
    fn over_long_keys_are_not_remembered() {
        let mut m = SessionMap::default();
        m.insert(&"k".repeat(MAX_SESSION_KEY_LEN + 1), "acc-1", 0);
        assert!(m.is_empty());
    }
}
