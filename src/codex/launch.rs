//! Find the codex binary and run it once for one account, watching its output for a usage limit.
//!
//! Two ways to run, chosen by whether cao itself is on a terminal:
//! - **PTY** (stdin and stdout are terminals): Codex gets its own pseudo-terminal, so its
//!   interactive UI works. cao puts the real terminal in raw mode, forwards every input byte
//!   (Ctrl-C included: it is just a byte and reaches Codex, never cao), copies output to the
//!   terminal as it arrives, keeps the window size in sync on SIGWINCH, and restores the
//!   terminal on every way out (normal end, error, panic, SIGTERM/SIGHUP).
//! - **Pipes** (CI, `| tee`, scripts): stdin is inherited; stdout and stderr are copied through
//!   unchanged to cao's own stdout and stderr.
//!
//! Either way the same bytes go to a [`Scanner`] and a [`QuotaWatch`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};

use super::scan::{QuotaHit, QuotaWatch, Scanner};

/// How often the wait loops look at signals and the child while no output arrives.
const TICK: Duration = Duration::from_millis(50);
/// How often to look for the child's exit once its output has closed (it is about to exit).
const REAP_TICK: Duration = Duration::from_millis(2);
/// After the child exits, how long to keep draining output a grandchild may still be writing.
const DRAIN_LIMIT: Duration = Duration::from_millis(1500);

/// Find the codex binary: a value with a `/` is a path; a bare name is looked up on `PATH`.
pub fn find_codex(name: &str) -> Result<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        if p.is_file() {
            return Ok(p);
        }
        anyhow::bail!("codex binary {name} does not exist; pass the right path with --codex");
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "could not find `{name}` on PATH; install the Codex CLI (npm install -g @openai/codex) or pass its path with --codex"
    )
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Whether cao's stdin and stdout are both terminals (then Codex runs under a PTY).
pub fn on_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// One Codex process to run.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The account's directory, given to Codex as `CODEX_HOME`.
    pub codex_home: PathBuf,
    /// Run under a pseudo-terminal (see [`on_terminal`]).
    pub pty: bool,
    /// More environment for Codex (`CODEX_CA_CERTIFICATE` for the gateway's HTTPS).
    pub env: Vec<(String, std::ffi::OsString)>,
}

/// How one Codex run ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The exit code cao should use: the child's code, or 128 + signal number.
    pub code: i32,
    /// The person interrupted the run (Ctrl-C / Ctrl-\ / SIGTERM / SIGHUP reached Codex or cao).
    pub interrupted: bool,
    /// The usage-limit message Codex printed, if any.
    pub quota: Option<QuotaHit>,
}

/// Signal flags, registered once per process. Handlers (not SIG_IGN) are used so the child
/// starts with default dispositions after exec.
struct Signals {
    interrupt: Arc<AtomicBool>,
    terminate: Arc<AtomicBool>,
    winch: Arc<AtomicBool>,
}

fn signals() -> &'static Signals {
    static S: OnceLock<Signals> = OnceLock::new();
    S.get_or_init(|| {
        let s = Signals {
            interrupt: Arc::new(AtomicBool::new(false)),
            terminate: Arc::new(AtomicBool::new(false)),
            winch: Arc::new(AtomicBool::new(false)),
        };
        use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGWINCH};
        for sig in [SIGINT, SIGQUIT] {
            let _ = signal_hook::flag::register(sig, Arc::clone(&s.interrupt));
        }
        for sig in [SIGTERM, SIGHUP] {
            let _ = signal_hook::flag::register(sig, Arc::clone(&s.terminate));
        }
        let _ = signal_hook::flag::register(SIGWINCH, Arc::clone(&s.winch));
        s
    })
}

/// From now on Ctrl-C, Ctrl-\, SIGTERM and SIGHUP no longer end cao; they are noticed instead
/// (see [`take_interrupt`]). Call before the first run.
pub fn catch_signals() {
    let _ = signals();
}

/// True (once) if an interrupt or termination signal reached cao since the last call.
pub fn take_interrupt() -> bool {
    let s = signals();
    let a = s.interrupt.swap(false, Ordering::SeqCst);
    let b = s.terminate.swap(false, Ordering::SeqCst);
    a || b
}

/// Run Codex once. `on_first_hit` is called the moment a usage-limit message is first seen
/// (in the TUI Codex keeps running, so the person can be told right away).
pub fn run_once(
    launch: &Launch,
    mut watch: QuotaWatch,
    on_first_hit: &mut dyn FnMut(&QuotaHit, bool),
) -> Result<Outcome> {
    if launch.pty {
        pty::run(launch, &mut watch, on_first_hit)
    } else {
        run_piped(launch, &mut watch, on_first_hit)
    }
}

enum Chunk {
    Out(Vec<u8>),
    Err(Vec<u8>),
}

fn observe(
    scanner: &mut Scanner,
    watch: &mut QuotaWatch,
    bytes: Option<&[u8]>,
    pty: bool,
    on_first_hit: &mut dyn FnMut(&QuotaHit, bool),
) {
    let lines = match bytes {
        Some(b) => scanner.feed(b),
        None => scanner.finish(),
    };
    for line in lines {
        if watch.observe(&line, crate::clock::now_ms())
            && let Some(hit) = watch.hit()
        {
            on_first_hit(hit, pty);
        }
    }
}

fn run_piped(
    launch: &Launch,
    watch: &mut QuotaWatch,
    on_first_hit: &mut dyn FnMut(&QuotaHit, bool),
) -> Result<Outcome> {
    use std::io::IsTerminal;
    use std::process::{Command, Stdio};
    // A terminal is shared as is; piped input is replayed to every attempt (see stdin_tee).
    let tee_stdin = !std::io::stdin().is_terminal();
    let mut child = Command::new(&launch.program)
        .args(&launch.args)
        .env("CODEX_HOME", &launch.codex_home)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(if tee_stdin {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {}", launch.program.display()))?;
    if let Some(input) = child.stdin.take() {
        super::stdin_tee::attach(input);
    }
    let (tx, rx) = mpsc::channel::<Chunk>();
    let mut readers = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(Chunk::Out(buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }));
    }
    if let Some(mut err) = child.stderr.take() {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 || tx.send(Chunk::Err(buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    let sig = signals();
    let mut interrupted = false;
    let mut out_scan = Scanner::new();
    let mut err_scan = Scanner::new();
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut exited: Option<(std::process::ExitStatus, std::time::Instant)> = None;
    let mut streams_done = false;
    loop {
        if let Some((_, at)) = &exited
            && (streams_done || at.elapsed() >= DRAIN_LIMIT)
        {
            break;
        }
        if streams_done {
            std::thread::sleep(REAP_TICK);
        } else {
            match rx.recv_timeout(TICK) {
                Ok(Chunk::Out(b)) => {
                    let _ = stdout.write_all(&b).and_then(|_| stdout.flush());
                    observe(&mut out_scan, watch, Some(&b), false, on_first_hit);
                }
                Ok(Chunk::Err(b)) => {
                    let _ = stderr.write_all(&b).and_then(|_| stderr.flush());
                    observe(&mut err_scan, watch, Some(&b), false, on_first_hit);
                }
                Err(RecvTimeoutError::Disconnected) => streams_done = true,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        if sig.interrupt.swap(false, Ordering::SeqCst) {
            // The terminal sent the signal to Codex too (same process group); just remember it.
            interrupted = true;
        }
        if sig.terminate.swap(false, Ordering::SeqCst) {
            interrupted = true;
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        if exited.is_none()
            && let Some(status) = child.try_wait().context("waiting for codex")?
        {
            exited = Some((status, std::time::Instant::now()));
        }
    }
    observe(&mut out_scan, watch, None, false, on_first_hit);
    observe(&mut err_scan, watch, None, false, on_first_hit);
    let status = match exited {
        Some((s, _)) => s,
        None => child.wait().context("waiting for codex")?,
    };
    use std::os::unix::process::ExitStatusExt;
    let (code, signal) = match (status.code(), status.signal()) {
        (Some(c), _) => (c, None),
        (None, Some(s)) => (128 + s, Some(s)),
        (None, None) => (1, None),
    };
    let by_user = matches!(signal, Some(2 | 3 | 15 | 1)) || code == 130;
    Ok(Outcome {
        code,
        interrupted: interrupted || by_user,
        quota: watch.hit().cloned(),
    })
}

mod pty {
    use super::*;
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};

    /// Where the one stdin-forwarding thread sends keystrokes: the current Codex PTY, if any.
    /// One thread for the life of cao, so a key typed between two runs is not stolen by a
    /// reader left blocked on the old PTY.
    fn stdin_target() -> &'static Mutex<Option<Box<dyn Write + Send>>> {
        static T: OnceLock<Mutex<Option<Box<dyn Write + Send>>>> = OnceLock::new();
        static STARTED: OnceLock<()> = OnceLock::new();
        let t = T.get_or_init(|| Mutex::new(None));
        STARTED.get_or_init(|| {
            std::thread::spawn(|| {
                let mut stdin = std::io::stdin();
                let mut buf = [0u8; 4096];
                loop {
                    let n = match stdin.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if let Ok(mut g) = stdin_target().lock()
                        && let Some(w) = g.as_mut()
                    {
                        let _ = w.write_all(&buf[..n]).and_then(|_| w.flush());
                    }
                }
            });
        });
        t
    }

    static RAW_ON: AtomicBool = AtomicBool::new(false);

    /// Puts the terminal in raw mode; restores it when dropped, and from the panic hook.
    struct RawGuard;

    impl RawGuard {
        fn enable() -> Result<Self> {
            static HOOK: OnceLock<()> = OnceLock::new();
            HOOK.get_or_init(|| {
                let previous = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    restore_terminal();
                    previous(info);
                }));
            });
            crossterm::terminal::enable_raw_mode()
                .context("could not put the terminal in raw mode")?;
            RAW_ON.store(true, Ordering::SeqCst);
            Ok(Self)
        }
    }

    impl Drop for RawGuard {
        fn drop(&mut self) {
            restore_terminal();
        }
    }

    fn restore_terminal() {
        if RAW_ON.swap(false, Ordering::SeqCst) {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }

    fn term_size() -> PtySize {
        let (cols, rows) = crossterm::terminal::size().unwrap_or((80, 24));
        PtySize {
            rows: rows.max(1),
            cols: cols.max(1),
            pixel_width: 0,
            pixel_height: 0,
        }
    }

    /// Signal names as `strsignal` spells them (what portable-pty reports) to numbers.
    fn signal_number(name: &str) -> i32 {
        match name {
            "Hangup" => 1,
            "Interrupt" => 2,
            "Quit" => 3,
            "Killed" => 9,
            "Terminated" => 15,
            _ => 1,
        }
    }

    pub(super) fn run(
        launch: &Launch,
        watch: &mut QuotaWatch,
        on_first_hit: &mut dyn FnMut(&QuotaHit, bool),
    ) -> Result<Outcome> {
        // Raw mode first: if the terminal refuses, no Codex has been started yet.
        let guard = RawGuard::enable()?;
        let pair = native_pty_system()
            .openpty(term_size())
            .context("could not open a pseudo-terminal for codex")?;
        let mut cmd = CommandBuilder::new(&launch.program);
        cmd.args(&launch.args);
        cmd.env("CODEX_HOME", &launch.codex_home);
        for (key, value) in &launch.env {
            cmd.env(key, value);
        }
        if let Ok(dir) = std::env::current_dir() {
            cmd.cwd(dir);
        }
        let mut child = pair
            .slave
            .spawn_command(cmd)
            .with_context(|| format!("could not start {}", launch.program.display()))?;
        drop(pair.slave);
        let mut reader = pair
            .master
            .try_clone_reader()
            .context("could not read codex's terminal")?;
        let writer = pair
            .master
            .take_writer()
            .context("could not write to codex's terminal")?;

        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });

        if let Ok(mut g) = stdin_target().lock() {
            *g = Some(writer);
        }
        let sig = signals();
        sig.winch.store(false, Ordering::SeqCst);
        let mut interrupted = false;
        let mut scanner = Scanner::new();
        let mut stdout = std::io::stdout();
        let mut exited: Option<(portable_pty::ExitStatus, std::time::Instant)> = None;
        let mut stream_done = false;
        loop {
            if let Some((_, at)) = &exited
                && (stream_done || at.elapsed() >= DRAIN_LIMIT)
            {
                break;
            }
            if stream_done {
                std::thread::sleep(REAP_TICK);
            } else {
                match rx.recv_timeout(TICK) {
                    Ok(b) => {
                        let _ = stdout.write_all(&b).and_then(|_| stdout.flush());
                        observe(&mut scanner, watch, Some(&b), true, on_first_hit);
                    }
                    Err(RecvTimeoutError::Disconnected) => stream_done = true,
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
            if sig.winch.swap(false, Ordering::SeqCst) {
                let _ = pair.master.resize(term_size());
            }
            if sig.terminate.swap(false, Ordering::SeqCst)
                || sig.interrupt.swap(false, Ordering::SeqCst)
            {
                interrupted = true;
                let _ = child.kill();
            }
            if exited.is_none()
                && let Some(status) = child.try_wait().context("waiting for codex")?
            {
                exited = Some((status, std::time::Instant::now()));
            }
        }
        if let Ok(mut g) = stdin_target().lock() {
            *g = None;
        }
        drop(guard);
        observe(&mut scanner, watch, None, true, on_first_hit);
        let status = match exited {
            Some((s, _)) => s,
            None => child.wait().context("waiting for codex")?,
        };
        let (code, by_user) = match status.signal() {
            Some(name) => {
                let n = signal_number(name);
                (128 + n, matches!(n, 1 | 2 | 3 | 15))
            }
            None => (i32::try_from(status.exit_code()).unwrap_or(1), false),
        };
        if status.signal().is_some() {
            // Codex died without cleaning up: leave the alternate screen, show the cursor, and
            // turn off bracketed paste, mouse reporting and the keyboard-protocol level it pushed.
            let _ = stdout.write_all(
                b"\x1b[?1049l\x1b[?25h\x1b[?2004l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[<u\r\n",
            );
            let _ = stdout.flush();
        }
        Ok(Outcome {
            code,
            interrupted: interrupted || by_user || code == 130,
            quota: watch.hit().cloned(),
        })
    }
}
