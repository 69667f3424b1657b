//! The interactive picker of `cao switch` (no name given, on a terminal).
//!
//! ```text
//! Default account: type to filter, ↑/↓ and Enter, or a number; Esc cancels
//! >  1 * work      ready        work@example.com
//!    2   personal  cooling      me@example.com
//!    3   spare     needs-login
//! ```
//!
//! Every account shows its state in the one vocabulary ([`crate::policy::account::State`]).
//! Typing filters by name (and email); a number picks that row of the full list; Enter picks
//! the highlighted one. Esc and Ctrl-C cancel (nothing changes). [`RawGuard`] restores the
//! terminal (cursor shown, raw mode off, the picker's lines cleared) on every way out.

use std::io::Write;

use anyhow::{Context, Result};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// One account in the picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub is_default: bool,
    /// Its state word (`ready`, `cooling`, `needs-login`, …).
    pub state: &'static str,
    /// Email, when known.
    pub detail: String,
}

/// What the person did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Picked(String),
    /// Esc.
    Cancelled,
    /// Ctrl-C.
    Interrupted,
}

/// The picker's state: a filter and a highlighted row among the matches. Pure: keys in, what
/// to show out.
#[derive(Debug, Clone)]
pub struct Picker {
    items: Vec<Item>,
    filter: String,
    /// Index into [`Picker::matches`].
    cursor: usize,
}

/// What a key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Redraw,
    Done(Outcome),
}

impl Picker {
    /// Start on the default account.
    pub fn new(items: Vec<Item>) -> Self {
        let cursor = items.iter().position(|i| i.is_default).unwrap_or(0);
        Self {
            items,
            filter: String::new(),
            cursor,
        }
    }

    /// Indices (into the full list) of the rows the filter lets through: a number matches its
    /// own row; text matches names and details containing it (case-insensitive).
    pub fn matches(&self) -> Vec<usize> {
        let f = self.filter.trim().to_lowercase();
        if f.is_empty() {
            return (0..self.items.len()).collect();
        }
        if f.parse::<usize>().is_ok() {
            let by_number: Vec<usize> = (0..self.items.len())
                .filter(|i| (i + 1).to_string().starts_with(&f))
                .collect();
            if !by_number.is_empty() {
                return by_number;
            }
        }
        let mut exact = Vec::new();
        let mut rest = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            let name = item.name.to_lowercase();
            if name == f {
                exact.push(i);
            } else if name.contains(&f) || item.detail.to_lowercase().contains(&f) {
                rest.push(i);
            }
        }
        exact.extend(rest);
        exact
    }

    /// The highlighted row (an index into the full list), if any row matches.
    pub fn highlighted(&self) -> Option<usize> {
        self.matches().get(self.cursor).copied()
    }

    /// Apply one key.
    pub fn key(&mut self, k: &KeyEvent) -> Step {
        if k.kind == KeyEventKind::Release {
            return Step::Redraw;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('c' | 'd') if ctrl => Step::Done(Outcome::Interrupted),
            KeyCode::Esc => Step::Done(Outcome::Cancelled),
            KeyCode::Enter => match self.pick() {
                Some(name) => Step::Done(Outcome::Picked(name)),
                None => Step::Redraw,
            },
            KeyCode::Up => {
                self.cursor = self.cursor.saturating_sub(1);
                Step::Redraw
            }
            KeyCode::Down => {
                let n = self.matches().len();
                self.cursor = (self.cursor + 1).min(n.saturating_sub(1));
                Step::Redraw
            }
            KeyCode::Backspace => {
                self.filter.pop();
                self.cursor = 0;
                Step::Redraw
            }
            KeyCode::Char(c) if !ctrl && !c.is_control() => {
                self.filter.push(c);
                self.cursor = 0;
                Step::Redraw
            }
            _ => Step::Redraw,
        }
    }

    /// Enter: a number picks that row of the full list, else the highlighted match.
    fn pick(&self) -> Option<String> {
        if let Ok(n) = self.filter.trim().parse::<usize>()
            && let Some(item) = n.checked_sub(1).and_then(|i| self.items.get(i))
        {
            return Some(item.name.clone());
        }
        self.highlighted().map(|i| self.items[i].name.clone())
    }

    /// The lines to show (at most `rows` of at most `width` columns): the prompt, then the
    /// matches around the highlighted one.
    pub fn lines(&self, rows: usize, width: usize) -> Vec<String> {
        let mut out = vec![format!(
            "Default account: type to filter, ↑/↓ and Enter, or a number; Esc cancels{}",
            if self.filter.is_empty() {
                String::new()
            } else {
                format!("  [{}]", self.filter)
            }
        )];
        let matches = self.matches();
        if matches.is_empty() {
            out.push(format!("  no account matches {:?}", self.filter));
        }
        let room = rows.saturating_sub(1).max(1);
        let start = self.cursor.saturating_sub(room.saturating_sub(1));
        let name_w = self
            .items
            .iter()
            .map(|i| i.name.chars().count())
            .max()
            .unwrap_or(0);
        let num_w = self.items.len().to_string().len();
        for (pos, &i) in matches.iter().enumerate().skip(start).take(room) {
            let item = &self.items[i];
            let line = format!(
                "{} {:>num_w$} {} {:<name_w$}  {:<11}  {}",
                if pos == self.cursor { ">" } else { " " },
                i + 1,
                if item.is_default { "*" } else { " " },
                item.name,
                item.state,
                item.detail,
            );
            out.push(line.trim_end().chars().take(width.max(10)).collect());
        }
        out
    }
}

/// Raw mode and a hidden cursor while the picker runs; dropping it clears the picker's lines
/// and puts the terminal back.
struct RawGuard {
    drawn: usize,
}

impl RawGuard {
    fn enter() -> Result<Self> {
        crossterm::terminal::enable_raw_mode().context("could not read keys from the terminal")?;
        let guard = Self { drawn: 0 };
        crossterm::execute!(std::io::stderr(), crossterm::cursor::Hide)
            .context("could not draw on the terminal")?;
        Ok(guard)
    }

    /// Replace the last drawing with `lines` (on stderr, like every prompt).
    fn draw(&mut self, lines: &[String]) -> Result<()> {
        let mut err = std::io::stderr().lock();
        let mut text = self.erase();
        text.push_str(&lines.join("\r\n"));
        text.push_str("\r\n");
        err.write_all(text.as_bytes())?;
        err.flush()?;
        self.drawn = lines.len();
        Ok(())
    }

    /// The escapes that take the cursor back to the first drawn line and clear below it.
    fn erase(&self) -> String {
        if self.drawn == 0 {
            String::new()
        } else {
            format!("\x1b[{}A\r\x1b[J", self.drawn)
        }
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        let mut err = std::io::stderr();
        let _ = err.write_all(self.erase().as_bytes());
        let _ = crossterm::terminal::disable_raw_mode();
        let _ = crossterm::execute!(err, crossterm::cursor::Show);
    }
}

/// Run the picker on the terminal until a pick or a cancel.
pub fn run(items: Vec<Item>) -> Result<Outcome> {
    let mut picker = Picker::new(items);
    let mut guard = RawGuard::enter()?;
    loop {
        let (cols, rows) = crossterm::terminal::size().unwrap_or((80, 24));
        let rows = usize::from(rows).saturating_sub(1).clamp(2, 20);
        guard.draw(&picker.lines(rows, usize::from(cols)))?;
        let Event::Key(k) = event::read().context("could not read the terminal")? else {
            continue;
        };
        if let Step::Done(outcome) = picker.key(&k) {
            return Ok(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<Item> {
        ["work", "personal", "spare"]
            .iter()
            .enumerate()
            .map(|(i, n)| Item {
                name: n.to_string(),
                is_default: i == 1,
                state: ["ready", "cooling", "needs-login"][i],
                detail: format!("{n}@example.com"),
            })
            .collect()
    }

    fn press(p: &mut Picker, code: KeyCode) -> Step {
        p.key(&KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn typed(p: &mut Picker, text: &str) {
        for c in text.chars() {
            press(p, KeyCode::Char(c));
        }
    }

    #[test]
    fn starts_on_the_default_and_enter_picks_the_highlighted_row() {
        let mut p = Picker::new(items());
        assert_eq!(p.highlighted(), Some(1));
        press(&mut p, KeyCode::Down);
        assert_eq!(
            press(&mut p, KeyCode::Enter),
            Step::Done(Outcome::Picked("spare".into()))
        );
    }

    #[test]
    fn typing_filters_and_a_number_picks_its_row() {
        let mut p = Picker::new(items());
        typed(&mut p, "SPA");
        assert_eq!(p.matches(), vec![2]);
        assert_eq!(
            press(&mut p, KeyCode::Enter),
            Step::Done(Outcome::Picked("spare".into()))
        );
        let mut p = Picker::new(items());
        typed(&mut p, "1");
        assert_eq!(
            press(&mut p, KeyCode::Enter),
            Step::Done(Outcome::Picked("work".into()))
        );
        let mut p = Picker::new(items());
        typed(&mut p, "nothing");
        assert!(p.matches().is_empty());
        assert_eq!(press(&mut p, KeyCode::Enter), Step::Redraw);
        for _ in 0..7 {
            press(&mut p, KeyCode::Backspace);
        }
        assert_eq!(p.matches().len(), 3);
    }

    #[test]
    fn esc_cancels_and_ctrl_c_interrupts() {
        let mut p = Picker::new(items());
        assert_eq!(press(&mut p, KeyCode::Esc), Step::Done(Outcome::Cancelled));
        assert_eq!(
            p.key(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Step::Done(Outcome::Interrupted)
        );
    }

    #[test]
    fn every_row_shows_its_number_and_state() {
        let p = Picker::new(items());
        let lines = p.lines(10, 80);
        assert_eq!(lines[1], "  1   work      ready        work@example.com");
        assert_eq!(
            lines[2],
            "> 2 * personal  cooling      personal@example.com"
        );
        assert_eq!(lines[3], "  3   spare     needs-login  spare@example.com");
        assert!(p.lines(2, 80).len() <= 2);
    }
}
