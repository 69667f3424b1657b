//! Give every Codex attempt the same piped stdin.
//!
//! `echo "$prompt" | cao run -- exec -` (or `codex exec` appending piped input to its prompt)
//! consumes stdin on the first attempt; after a usage limit, the next account would get nothing.
//! So when stdin is not a terminal, cao reads it itself, remembers what it read, and feeds each
//! attempt through a pipe: first everything read so far, then what arrives next. It never waits
//! for the end of stdin before starting Codex (a pipe that stays open must not hang cao), and a
//! Codex that does not read stdin only leaves bytes in a pipe that is closed when it exits.

use std::io::{Read, Write};
use std::process::ChildStdin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Most stdin remembered for replay; beyond this a later attempt gets a truncated copy.
const MAX_RECORDED: usize = 64 * 1024 * 1024;

/// Set once stdin outgrew [`MAX_RECORDED`] (outside the lock, so checking never blocks).
static TRUNCATED: AtomicBool = AtomicBool::new(false);

#[derive(Default)]
struct State {
    recorded: Vec<u8>,
    eof: bool,
    target: Option<ChildStdin>,
}

fn state() -> &'static Arc<Mutex<State>> {
    static S: OnceLock<Arc<Mutex<State>>> = OnceLock::new();
    S.get_or_init(|| {
        let s = Arc::new(Mutex::new(State::default()));
        let reader_state = Arc::clone(&s);
        std::thread::spawn(move || pump(&reader_state));
        s
    })
}

/// Read cao's stdin until it ends, recording it and passing it to the current attempt.
fn pump(s: &Mutex<State>) {
    let mut stdin = std::io::stdin();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => 0,
            Ok(n) => n,
        };
        let Ok(mut st) = s.lock() else { return };
        if n == 0 {
            st.eof = true;
            st.target = None; // closes the child's stdin: it sees the end too
            return;
        }
        if st.recorded.len() + n <= MAX_RECORDED {
            st.recorded.extend_from_slice(&buf[..n]);
        } else {
            TRUNCATED.store(true, Ordering::SeqCst);
        }
        if let Some(t) = st.target.as_mut()
            && t.write_all(&buf[..n]).is_err()
        {
            st.target = None; // that Codex closed its stdin or exited
        }
    }
}

/// Whether stdin outgrew what cao keeps, so a later attempt gets only its beginning.
pub fn truncated() -> bool {
    TRUNCATED.load(Ordering::SeqCst)
}

/// Connect a new attempt's stdin: replay what was read so far (in a helper thread, so a Codex
/// that does not read cannot block cao), then keep it fed until stdin ends.
pub fn attach(mut child_stdin: ChildStdin) {
    let s = Arc::clone(state());
    std::thread::spawn(move || {
        let Ok(mut st) = s.lock() else { return };
        // Hold the lock while replaying so no chunk slips between the copy and the hand-over.
        if child_stdin.write_all(&st.recorded).is_err() {
            return;
        }
        if !st.eof {
            st.target = Some(child_stdin);
        }
        // At EOF `child_stdin` is dropped here, closing the pipe after the replay.
    });
}
