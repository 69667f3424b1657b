//! `cao status --watch`: the dashboard redrawn in place every `--interval` seconds.
//!
//! On a terminal it draws on the alternate screen (the shell's screen comes back untouched),
//! hides the cursor, reads keys in raw mode (`q`, Esc or Ctrl-C quit; a resize redraws at once)
//! and fits each frame to the terminal's rows and columns ([`crate::render::watch::frame`]).
//! [`Terminal`] puts everything back on every way out: a key, an error, a panic, or SIGINT /
//! SIGTERM / SIGHUP from outside (caught through [`crate::codex::launch::catch_signals`]).
//! Off a terminal it prints one plain frame per interval.
//!
//! Each redraw asks the running gateway (found through its runtime file,
//! [`crate::gateway::running::find_url`]) for `GET /status`; when it answers, its fresher usage
//! and cooldowns go into the view and a footer names its strategy, sessions, last routing
//! decision and recent switches. Without a gateway the dashboard comes from the data dir alone.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::Ctx;
use crate::codex::launch;
use crate::gateway::running::LiveError;
use crate::gateway::{LiveGateway, Overrides, running};
use crate::policy::health::HealthOptions;
use crate::render::{RenderOpts, style, watch};
use crate::store::inspect::Overview;
use crate::wire::Status;

/// The overview to draw and the footer about the gateway (empty without one; one line naming
/// the problem when something that is not this user's gateway answers there).
pub fn snapshot(ctx: &Ctx, r: &RenderOpts) -> Result<(Overview, Vec<String>)> {
    let mut overview = ctx.store.inspect()?;
    let (url, live) = match live_status(ctx) {
        Ok(Some(v)) => v,
        Ok(None) => return Ok((overview, Vec::new())),
        Err(e) => {
            let note = format!("{} {}", style::bold("Gateway"), style::dim(&e.to_string()));
            return Ok((overview, vec![note]));
        }
    };
    overlay(&mut overview, &live);
    Ok((overview, watch::gateway_footer(&url, &live, r)))
}

/// The running gateway's `/status`, if this user's gateway answers (anything else on the port
/// is neither sent the access key nor believed).
fn live_status(ctx: &Ctx) -> Result<Option<(String, Status)>, LiveError> {
    let url = running::find_url(&ctx.store);
    let Some(gateway) = LiveGateway::find(&ctx.store, &url, Overrides::from_env().access_key)?
    else {
        return Ok(None);
    };
    Ok(gateway
        .status()
        .ok()
        .map(|status| (gateway.url().to_string(), status)))
}

/// Put the gateway's in-memory usage and cooldowns (fresher than the batched files) into the
/// overview.
fn overlay(o: &mut Overview, live: &Status) {
    for a in &live.accounts {
        let Some(view) = o.accounts.iter_mut().find(|v| v.name == a.name) else {
            continue;
        };
        if let Some(u) = &a.usage {
            view.status.usage = Some(u.clone());
        }
        if let Some(c) = a.cooldown_until_ms {
            view.status.cooldown_until_ms = Some(c);
        }
    }
}

/// `cao status --watch`.
pub fn run(ctx: &Ctx, interval_secs: u64, opts: &HealthOptions) -> Result<i32> {
    let interval = Duration::from_secs(interval_secs.max(1));
    let tty = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    launch::catch_signals();
    if !tty {
        return plain(ctx, interval, opts);
    }
    let mut term = Terminal::enter()?;
    loop {
        let (cols, rows) = crossterm::terminal::size().unwrap_or((80, 24));
        let r = RenderOpts::now(usize::from(cols));
        let (overview, footer) = snapshot(ctx, &r)?;
        let h = overview.health(opts, r.now_ms);
        let status = watch::status_line(interval.as_secs(), &r);
        let frame = watch::frame(&overview, &h, &r, usize::from(rows), &footer, &status);
        term.draw(&frame)?;
        // Warnings from the store would scribble over the frame: they wait for the exit.
        match wait(interval)? {
            Next::Redraw => {}
            Next::Quit => break,
        }
    }
    drop(term);
    ctx.flush_notices();
    Ok(0)
}

/// Off a terminal: one plain frame per interval, until a signal.
fn plain(ctx: &Ctx, interval: Duration, opts: &HealthOptions) -> Result<i32> {
    loop {
        let r = RenderOpts::now(88);
        let (overview, footer) = snapshot(ctx, &r)?;
        let h = overview.health(opts, r.now_ms);
        let status = watch::status_line(interval.as_secs(), &r);
        let frame = watch::frame(&overview, &h, &r, usize::MAX, &footer, &status);
        let mut out = anstream::stdout();
        out.write_all(frame.as_bytes())?;
        out.write_all(b"\n")?;
        out.flush()?;
        ctx.flush_notices();
        let until = Instant::now() + interval;
        while Instant::now() < until {
            if launch::take_interrupt() {
                return Ok(0);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

enum Next {
    Redraw,
    Quit,
}

/// Wait up to `interval` for a key, a resize or a signal.
fn wait(interval: Duration) -> Result<Next> {
    let until = Instant::now() + interval;
    loop {
        if launch::take_interrupt() {
            return Ok(Next::Quit);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Next::Redraw);
        }
        if !event::poll(left.min(Duration::from_millis(100))).context("reading the terminal")? {
            continue;
        }
        match event::read().context("reading the terminal")? {
            Event::Key(k) if quits(&k) => return Ok(Next::Quit),
            Event::Resize(..) => return Ok(Next::Redraw),
            _ => {}
        }
    }
}

/// `q`, Esc or Ctrl-C (in raw mode Ctrl-C is a key, not a signal).
fn quits(k: &KeyEvent) -> bool {
    k.kind != KeyEventKind::Release
        && match k.code {
            KeyCode::Char('q' | 'Q') | KeyCode::Esc => true,
            KeyCode::Char('c') => k.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        }
}

/// The terminal in watch mode: alternate screen, hidden cursor, raw mode. Dropping it puts the
/// terminal back as it was.
struct Terminal {
    raw: bool,
}

impl Terminal {
    fn enter() -> Result<Self> {
        let mut out = std::io::stdout();
        crossterm::execute!(
            out,
            crossterm::terminal::EnterAlternateScreen,
            crossterm::cursor::Hide
        )
        .context("could not switch to the alternate screen")?;
        let mut term = Self { raw: false };
        crossterm::terminal::enable_raw_mode().context("could not read keys from the terminal")?;
        term.raw = true;
        Ok(term)
    }

    /// Draw one frame from the top-left corner, clearing what the last one left.
    fn draw(&mut self, frame: &str) -> Result<()> {
        // Colour as anstream would decide (never with NO_COLOR); the cursor movements below
        // go out either way, so the text is written past anstream.
        let stdout = std::io::stdout();
        let frame = match anstream::AutoStream::choice(&stdout) {
            anstream::ColorChoice::Never => crate::render::style::strip(frame),
            _ => frame.to_string(),
        };
        // Raw mode: a newline moves down without returning to column 0; each line clears
        // what the last frame left to its right, and the end clears the rest of the screen.
        let body = frame.trim_end_matches('\n').replace('\n', "\x1b[K\r\n");
        let mut out = stdout.lock();
        write!(out, "\x1b[H{body}\x1b[K\x1b[J")?;
        out.flush()?;
        Ok(())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if self.raw {
            let _ = crossterm::terminal::disable_raw_mode();
        }
        let _ = crossterm::execute!(
            std::io::stdout(),
            crossterm::cursor::Show,
            crossterm::terminal::LeaveAlternateScreen
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_esc_and_ctrl_c_quit_other_keys_do_not() {
        let key = |code, modifiers| KeyEvent::new(code, modifiers);
        assert!(quits(&key(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!quits(&key(KeyCode::Char('c'), KeyModifiers::NONE)));
        assert!(!quits(&key(KeyCode::Enter, KeyModifiers::NONE)));
    }
}
