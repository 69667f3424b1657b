//! Watch Codex's output for a usage-limit message while it streams to the terminal.
//!
//! Bytes arrive in arbitrary chunks (a UTF-8 character or an escape sequence can be cut in two),
//! mixed with ANSI escapes (colours, and in the TUI cursor moves instead of newlines). [`Scanner`]
//! runs them through a `vte` parser, keeps only printed text, and cuts lines at `\n`, `\r` and
//! cursor-positioning sequences. [`QuotaWatch`] feeds those lines to the one pure classifier,
//! [`crate::policy::quota`], and reads the reset time with [`crate::policy::reset_time`].
//!
//! The bytes themselves are never changed: callers copy them to the terminal untouched and give
//! the scanner a look at the same slice.

use jiff::tz::TimeZone;

use crate::policy::quota::QuotaClassifier;
use crate::policy::reset_time::parse_reset;

/// Longest line kept; longer runs are cut so a stream without newlines cannot grow memory.
const MAX_LINE_CHARS: usize = 4096;

/// Streaming escape-stripper and line splitter.
pub struct Scanner {
    parser: vte::Parser,
    acc: Lines,
}

#[derive(Default)]
struct Lines {
    current: String,
    chars: usize,
    done: Vec<String>,
}

impl Lines {
    fn push_char(&mut self, c: char) {
        self.current.push(c);
        self.chars += 1;
        if self.chars >= MAX_LINE_CHARS {
            self.end_line();
        }
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.current);
        self.chars = 0;
        let trimmed = line.trim();
        if !trimmed.is_empty() {
            self.done.push(trimmed.to_string());
        }
    }
}

impl vte::Perform for Lines {
    fn print(&mut self, c: char) {
        self.push_char(c);
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\n' | b'\r' | 0x0b | 0x0c => self.end_line(),
            b'\t' => self.push_char(' '),
            0x08 if self.current.pop().is_some() => {
                self.chars = self.chars.saturating_sub(1);
            }
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, _params: &vte::Params, _inter: &[u8], _ignore: bool, action: char) {
        match action {
            // Cursor moves to another row: what a TUI does instead of printing a newline.
            'H' | 'f' | 'd' | 'A' | 'B' | 'E' | 'F' | 'S' | 'T' | 'r' => self.end_line(),
            // Cursor moves along the row: a gap between words.
            'C' | 'G' | '`' | 'a' => self.push_char(' '),
            _ => {}
        }
    }
}

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    pub fn new() -> Self {
        Self {
            parser: vte::Parser::new(),
            acc: Lines::default(),
        }
    }

    /// Feed the next chunk; returns the lines it completed (escape-free, trimmed, non-empty).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        for &b in bytes {
            self.parser.advance(&mut self.acc, b);
        }
        std::mem::take(&mut self.acc.done)
    }

    /// The stream ended: return the unfinished last line, if any.
    pub fn finish(&mut self) -> Vec<String> {
        self.acc.end_line();
        std::mem::take(&mut self.acc.done)
    }
}

/// A usage-limit message seen in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaHit {
    /// The line that matched (escape-free), for `lastError` and the user.
    pub line: String,
    /// When the account comes back, if the message said so (ms since the epoch).
    pub reset_at_ms: Option<i64>,
    /// When cao saw it.
    pub seen_at_ms: i64,
}

/// Lines checked for a reset time after the matching one (a TUI wraps long messages).
const RESET_LOOKAHEAD_LINES: u32 = 3;

/// Classifies lines as they complete. A TUI may wrap the message over two rows, so each line is
/// also checked joined to the one before it.
pub struct QuotaWatch {
    classifier: QuotaClassifier,
    tz: TimeZone,
    prev: String,
    hit: Option<QuotaHit>,
    lookahead: u32,
    /// Limit messages already in the conversation being resumed (line, reset).
    replayed: Vec<(String, Option<i64>)>,
    /// A sighting not yet told apart from a replayed one (its reset may follow on later lines).
    pending: Option<QuotaHit>,
}

impl QuotaWatch {
    pub fn new(classifier: QuotaClassifier, tz: TimeZone) -> Self {
        Self {
            classifier,
            tz,
            prev: String::new(),
            hit: None,
            lookahead: 0,
            replayed: Vec::new(),
            pending: None,
        }
    }

    /// Ignore these earlier hits when they show up again. `codex resume <id>` redraws the whole
    /// conversation, including the limit message the previous account got (same text, same
    /// reset time); without this the next account would be taken for spent the moment the
    /// resumed UI starts (seen with the real Codex 0.169 TUI). A message that differs, in text
    /// or reset time, still counts.
    pub fn ignoring(mut self, replayed: &[QuotaHit]) -> Self {
        self.replayed = replayed
            .iter()
            .map(|h| (h.line.trim().to_string(), h.reset_at_ms))
            .collect();
        self
    }

    fn is_replay(&self, h: &QuotaHit) -> bool {
        self.replayed
            .iter()
            .any(|(line, reset)| *line == h.line.trim() && *reset == h.reset_at_ms)
    }

    /// Look at one completed line, seen at `now_ms`. Returns true the first time a usage-limit
    /// message is recognised (so the caller can tell the person once).
    pub fn observe(&mut self, line: &str, now_ms: i64) -> bool {
        if self.replayed.is_empty() {
            return self.observe_line(line, now_ms);
        }
        // Resuming: a sighting waits in `pending` until its reset time is known (it may be on
        // the next wrapped line), then counts only if it is not a replayed one.
        let confirmed = self.hit.take();
        self.hit = self.pending.take();
        self.observe_line(line, now_ms);
        self.pending = self.hit.take();
        self.hit = confirmed;
        let ready = self
            .pending
            .as_ref()
            .is_some_and(|p| p.reset_at_ms.is_some() || self.lookahead == 0);
        if !ready {
            return false;
        }
        match self.pending.take() {
            Some(p) if self.hit.is_none() && !self.is_replay(&p) => {
                self.hit = Some(p);
                true
            }
            _ => false,
        }
    }

    fn observe_line(&mut self, line: &str, now_ms: i64) -> bool {
        let joined = if self.prev.is_empty() {
            line.to_string()
        } else {
            format!("{} {line}", self.prev)
        };
        let mut first = false;
        if self.classifier.is_quota(line) || self.classifier.is_quota(&joined) {
            let reset = parse_reset(line, now_ms, &self.tz)
                .or_else(|| parse_reset(&joined, now_ms, &self.tz));
            match &mut self.hit {
                // The TUI redraws the same message; keep the first sighting, refresh the reset.
                Some(h) => {
                    if reset.is_some() {
                        h.reset_at_ms = reset;
                    }
                }
                None => {
                    first = true;
                    self.hit = Some(QuotaHit {
                        line: line.to_string(),
                        reset_at_ms: reset,
                        seen_at_ms: now_ms,
                    });
                }
            }
            self.lookahead = RESET_LOOKAHEAD_LINES;
        } else if self.lookahead > 0 {
            self.lookahead -= 1;
            if let Some(h) = self.hit.as_mut().filter(|h| h.reset_at_ms.is_none()) {
                h.reset_at_ms = parse_reset(line, now_ms, &self.tz)
                    .or_else(|| parse_reset(&joined, now_ms, &self.tz));
            }
        }
        self.prev = line.to_string();
        first
    }

    /// The usage-limit message seen so far, if any.
    /// (A sighting still waiting for its reset time counts unless it is a replayed one.)
    pub fn hit(&self) -> Option<&QuotaHit> {
        self.hit
            .as_ref()
            .or_else(|| self.pending.as_ref().filter(|p| !self.is_replay(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = Scanner::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(s.feed(c));
        }
        out.extend(s.finish());
        out
    }

    #[test]
    fn strips_colours_and_joins_lines_split_across_chunks() {
        let msg = "\x1b[31mERROR:\x1b[0m You’ve hit your usage limit.\r\nnext";
        let bytes = msg.as_bytes();
        // Cut everywhere, including inside the escape and inside the 3-byte apostrophe.
        for cut in 1..bytes.len() {
            let lines = feed_all(&[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(
                lines,
                vec!["ERROR: You’ve hit your usage limit.", "next"],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn cursor_moves_end_lines_like_a_tui_draws() {
        let lines = feed_all(&[
            b"\x1b[?1049h\x1b[2;1Hfirst row\x1b[3;1H\x1b[1mYou\x1b[1Cve\x1b[0m\x1b[4;5Hthird",
        ]);
        assert_eq!(lines, vec!["first row", "You ve", "third"]);
    }

    #[test]
    fn osc_titles_are_not_text() {
        let lines = feed_all(&[b"\x1b]0;codex usage_limit_reached\x07hello\n"]);
        assert_eq!(lines, vec!["hello"]);
    }

    #[test]
    fn very_long_lines_are_cut() {
        let long = "x".repeat(MAX_LINE_CHARS * 2 + 5);
        let lines = feed_all(&[long.as_bytes()]);
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn watch_finds_message_once_and_reads_reset_from_a_wrapped_row() {
        let tz = TimeZone::UTC;
        let mut w = QuotaWatch::new(QuotaClassifier::builtin(), tz);
        let now = 1_764_000_000_000; // 2025-11-24T16:00:00Z
        assert!(!w.observe("working...", now));
        assert!(w.observe("■ You’ve hit your usage limit. Upgrade to Pro", now));
        assert!(!w.observe("or try again at 7:37 PM.", now));
        assert!(!w.observe("■ You’ve hit your usage limit. Upgrade to Pro", now));
        let hit = w.hit().cloned().unwrap();
        assert_eq!(hit.line, "■ You’ve hit your usage limit. Upgrade to Pro");
        // 19:38 UTC the same day (end of the printed minute).
        assert_eq!(
            hit.reset_at_ms,
            Some(1_764_000_000_000 + (3 * 60 + 38) * 60_000)
        );
    }

    /// What the real Codex TUI shows: the reset time on the wrapped second row.
    fn limit_message(w: &mut QuotaWatch, at: &str, now: i64) -> bool {
        let a = w.observe(
            "■ You’ve hit your usage limit. Upgrade to Pro (https://x), visit",
            now,
        );
        let b = w.observe(
            &format!("usage to purchase more credits or try again at {at}."),
            now,
        );
        a || b
    }

    #[test]
    fn resumed_watch_ignores_the_replayed_message_but_not_a_new_one() {
        let now = 1_764_000_000_000; // 2025-11-24T16:00:00Z
        let mut first = QuotaWatch::new(QuotaClassifier::builtin(), TimeZone::UTC);
        assert!(limit_message(&mut first, "7:37 PM", now));
        let earlier = first.hit().cloned().unwrap();

        // `codex resume` on the next account draws the old conversation, message included.
        let mut w = QuotaWatch::new(QuotaClassifier::builtin(), TimeZone::UTC)
            .ignoring(std::slice::from_ref(&earlier));
        assert!(!w.observe("› second question", now));
        assert!(!limit_message(&mut w, "7:37 PM", now));
        assert!(!w.observe("› Ask Codex to do anything", now));
        assert!(w.hit().is_none());
        // Drawn again (a resize): still a replay.
        assert!(!limit_message(&mut w, "7:37 PM", now));
        assert!(w.hit().is_none());
        // This account's own limit, with its own reset time, counts.
        assert!(limit_message(&mut w, "9:05 PM", now));
        let hit = w.hit().cloned().unwrap();
        assert_eq!(hit.reset_at_ms, Some(now + (5 * 60 + 6) * 60_000));
    }

    #[test]
    fn resumed_watch_counts_a_new_message_without_reset_time() {
        let mut w =
            QuotaWatch::new(QuotaClassifier::builtin(), TimeZone::UTC).ignoring(&[QuotaHit {
                line: "■ You’ve hit your usage limit. Upgrade to Pro (https://x), visit".into(),
                reset_at_ms: Some(5),
                seen_at_ms: 0,
            }]);
        assert!(!w.observe("■ You’ve hit your usage limit. Try again later.", 0));
        // Not yet settled (a reset could follow), but it already counts as a hit.
        assert!(w.hit().is_some());
        // Told once, when no reset time can follow any more.
        let told: Vec<bool> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|l| w.observe(l, 0))
            .collect();
        assert_eq!(told.iter().filter(|t| **t).count(), 1, "{told:?}");
        assert_eq!(w.hit().cloned().unwrap().reset_at_ms, None);
    }

    #[test]
    fn watch_matches_a_message_wrapped_mid_phrase() {
        let mut w = QuotaWatch::new(QuotaClassifier::builtin(), TimeZone::UTC);
        assert!(!w.observe("■ You’ve hit your usage", 0));
        assert!(w.observe("limit. Try again later.", 0));
        assert_eq!(w.hit().unwrap().reset_at_ms, None);
    }

    #[test]
    fn watch_ignores_ordinary_errors() {
        let mut w = QuotaWatch::new(QuotaClassifier::builtin(), TimeZone::UTC);
        assert!(!w.observe("error: context length exceeded", 0));
        assert!(!w.observe("maximum recursion depth exceeded", 0));
        assert!(w.hit().cloned().is_none());
    }

    proptest::proptest! {
        /// Cutting the stream anywhere never changes the lines (chunk boundaries are invisible).
        #[test]
        fn chunking_does_not_change_lines(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), cuts in proptest::collection::vec(0usize..300, 0..6)) {
            let whole = feed_all(&[&bytes]);
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            points.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut start = 0;
            for p in points {
                chunks.push(&bytes[start..p]);
                start = p;
            }
            chunks.push(&bytes[start..]);
            proptest::prop_assert_eq!(feed_all(&chunks), whole);
        }
    }
}
