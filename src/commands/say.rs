//! The one place cao speaks on stderr outside a rendered view: [`say`] (cao's own line while
//! Codex runs, `[cao] …`), [`warn`] (`warning: …`, yellow on a terminal) and [`note`] (a plain
//! line: what to do next, what happens now). A closed stderr is not an error worth failing for.

use std::io::Write;

use anstyle::{AnsiColor, Style};

/// One line prefixed so it is clear cao (not Codex) is speaking.
pub fn say(message: &str) {
    let bold = Style::new().bold();
    let _ = writeln!(anstream::stderr(), "{bold}[cao]{bold:#} {message}");
}

/// A warning in the house style.
pub fn warn(message: &str) {
    let yellow = Style::new().bold().fg_color(Some(AnsiColor::Yellow.into()));
    let _ = writeln!(anstream::stderr(), "{yellow}warning{yellow:#}: {message}");
}

/// A plain line: what happens now, what to do next.
pub fn note(message: &str) {
    let _ = writeln!(anstream::stderr(), "{message}");
}
