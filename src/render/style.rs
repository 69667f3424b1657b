//! Colour for human views. Renderers always emit ANSI styles; commands print through
//! `anstream`, which strips them when stdout is not a terminal or `NO_COLOR` is set.

use anstyle::{AnsiColor, Style};

use crate::policy::health::Severity;

fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

pub fn bold(text: &str) -> String {
    paint(Style::new().bold(), text)
}

pub fn dim(text: &str) -> String {
    paint(Style::new().dimmed(), text)
}

pub fn green(text: &str) -> String {
    paint(Style::new().fg_color(Some(AnsiColor::Green.into())), text)
}

pub fn yellow(text: &str) -> String {
    paint(Style::new().fg_color(Some(AnsiColor::Yellow.into())), text)
}

pub fn red(text: &str) -> String {
    paint(Style::new().fg_color(Some(AnsiColor::Red.into())), text)
}

/// `OK` / `WARN` / `ERROR` in its colour.
pub fn badge(worst: Option<Severity>) -> String {
    match worst {
        None | Some(Severity::Info) => green("OK"),
        Some(Severity::Warn) => yellow("WARN"),
        Some(Severity::Error) => red("ERROR"),
    }
}

/// The severity word of a doctor line, coloured.
pub fn severity(sev: Severity) -> String {
    match sev {
        Severity::Info => dim("info"),
        Severity::Warn => yellow("warn"),
        Severity::Error => red("error"),
    }
}

/// The characters of `text` a terminal shows: ANSI escape sequences (CSI: `ESC [` params,
/// then a final byte in `@`..=`~`) skipped.
fn visible_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    let mut chars = text.chars();
    std::iter::from_fn(move || {
        loop {
            let c = chars.next()?;
            if c != '\x1b' {
                return Some(c);
            }
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) && d != '[' {
                    break;
                }
            }
        }
    })
}

/// Visible width of `text`: characters, not counting ANSI escape sequences.
pub fn visible_width(text: &str) -> usize {
    visible_chars(text).count()
}

/// Remove ANSI escape sequences.
pub fn strip(text: &str) -> String {
    visible_chars(text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn width_ignores_escapes() {
        let s = format!("a {} b", red("ERROR"));
        assert_eq!(visible_width(&s), 9);
        assert_eq!(strip(&s), "a ERROR b");
        assert_eq!(visible_width("│ é"), 3);
    }
}
