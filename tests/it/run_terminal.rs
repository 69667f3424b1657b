//! `cao run` with small fake codex programs on signals, pseudo-terminals and pipes: Ctrl-C reaches
//! Codex, Codex gets a real terminal that is restored afterwards, and stdin reaches every attempt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::run::{Fixture, MSG, cao_pty_command, run_on_pty};

use std::path::Path;

// ---- signals -------------------------------------------------------------------------------

/// Start cao in its own process group (like a shell job), wait for `ready`, send `sig` to the
/// whole group (what a terminal does on Ctrl-C), then let the fake finish via `go`.
fn signal_run(f: &Fixture, sig: nix::sys::signal::Signal) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("cao"));
    cmd.arg("--data-dir")
        .arg(f.env.data_dir())
        .args(["run", "--codex"])
        .arg(&f.codex)
        .args(["--", "exec", "x"])
        .env("HOME", f.env.dir.path().join("home"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let child = cmd.spawn().unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    wait_for_file(&f.path("ready"));
    nix::sys::signal::killpg(pid, sig).unwrap();
    std::fs::write(f.path("go"), "").unwrap();
    child.wait_with_output().unwrap()
}

fn wait_for_file(p: &Path) {
    for _ in 0..600 {
        if p.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} never appeared", p.display());
}

#[test]
fn ctrl_c_reaches_codex_and_cao_exits_with_its_status_without_falling_back() {
    let f = Fixture::new(
        &["a", "b"],
        &format!(
            "trap 'echo \"codex got INT\"; exit 130' INT\n[ $acct = a ] && echo 'ERROR: {MSG}'\ntouch \"$(dirname \"$0\")/ready\"\nwhile :; do sleep 0.05; done"
        ),
    );
    let out = signal_run(&f, nix::sys::signal::Signal::SIGINT);
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("codex got INT"));
    // Even though account a printed the usage-limit message, an interrupt never falls back.
    assert_eq!(f.calls(), vec!["a exec x"]);
}

#[test]
fn codex_that_ignores_ctrl_c_keeps_running_and_cao_survives() {
    let f = Fixture::new(
        &["a", "b"],
        "trap '' INT\nd=$(dirname \"$0\")\ntouch \"$d/ready\"\nwhile [ ! -f \"$d/go\" ]; do sleep 0.05; done\necho finished\nexit 0",
    );
    let out = signal_run(&f, nix::sys::signal::Signal::SIGINT);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "finished\n");
}

#[test]
fn on_a_terminal_codex_gets_a_terminal_too() {
    let f = Fixture::new(
        &["a"],
        "if [ -t 0 ] && [ -t 1 ]; then echo \"codex on a tty: $(stty size)\"; else echo 'codex NOT on a tty'; fi",
    );
    let (out, code) = run_on_pty(&f, &["--", "exec", "x"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("codex on a tty: 30 100"), "{out}");
    // And through pipes it is not.
    f.cao()
        .args(["--", "exec", "x"])
        .assert()
        .success()
        .stdout("codex NOT on a tty\n");
}

#[test]
fn interactive_ui_limit_is_noticed_live_and_cao_moves_on_after_codex_exits_zero() {
    // Like the TUI: show the message, keep going, and exit 0 when the person leaves.
    let f = Fixture::new(
        &["a", "b"],
        &format!(
            "if [ $acct = a ]; then printf '\\033[2;1H\\033[1m■ {MSG}\\033[0m\\033[3;1H'; sleep 0.3; exit 0; fi\necho \"tty ui on $acct\""
        ),
    );
    let (out, code) = run_on_pty(&f, &["--", "fix the bug"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cao continues on the next account"), "{out}");
    assert!(out.contains("tty ui on b"), "{out}");
    assert_eq!(f.calls(), vec!["a fix the bug", "b fix the bug"]);
    assert!(f.status("a")["cooldownUntilMs"].is_i64());
}

/// Run cao on a pseudo-terminal inside a shell wrapper that afterwards prints cao's exit code
/// and whether the terminal is back in cooked mode (icanon, echo).
fn run_then_check_terminal(body: &str) -> String {
    let f = Fixture::new(&["a"], body);
    let wrapper = f.path("wrap.sh");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\n\"$@\"\necho \"exit: $?\"\necho \"after: $(stty -a | tr ' ' '\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' ')\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = portable_pty::CommandBuilder::new(&wrapper);
    cmd.args(cao_pty_command(&f, &["--", "exec", "x"]).get_argv());
    cmd.env("NO_COLOR", "1");
    common::run_on_pty(cmd, 24, 80, |_| {}).0
}

#[test]
fn terminal_is_restored_after_the_run() {
    let out = run_then_check_terminal("echo child");
    assert!(out.contains("child"), "{out}");
    assert!(out.contains("exit: 0"), "{out}");
    assert!(out.contains("after: icanon echo"), "{out}");
}

#[test]
fn terminal_is_restored_when_codex_dies_from_a_signal() {
    // Codex put the terminal in raw mode and the alternate screen, then was killed.
    let out = run_then_check_terminal("stty raw -echo; printf '\\033[?1049h'; kill -KILL $$");
    assert!(out.contains("exit: 137"), "{out}");
    assert!(out.contains("\x1b[?1049l"), "{out:?}");
    assert!(out.contains("after: icanon echo"), "{out}");
}

#[test]
fn window_size_changes_reach_codex() {
    // The fake waits until its terminal is 50x132 (polling, bounded), then reports the size.
    let f = Fixture::new(
        &["a"],
        "touch \"$(dirname \"$0\")/ready\"\ni=0\nwhile [ \"$(stty size)\" != '50 132' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\necho \"size now $(stty size)\"",
    );
    let (out, code) = common::run_on_pty(
        cao_pty_command(&f, &["--", "exec", "x"]),
        24,
        80,
        |master| {
            wait_for_file(&f.path("ready"));
            master
                .resize(portable_pty::PtySize {
                    rows: 50,
                    cols: 132,
                    pixel_width: 0,
                    pixel_height: 0,
                })
                .unwrap();
        },
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("size now 50 132"), "{out}");
}

#[test]
fn piped_stdin_reaches_every_attempt() {
    // Like `echo prompt | cao run -- exec -`: each attempt reads all of stdin.
    let f = Fixture::new(
        &["a", "b"],
        "input=$(cat)\necho \"$acct read: $input\"\nif [ $acct = a ]; then echo 'ERROR: You’ve hit your usage limit.' >&2; exit 1; fi",
    );
    f.cao()
        .args(["--", "exec", "-"])
        .write_stdin("line one\nline two\n")
        .assert()
        .success()
        .stdout("a read: line one\nline two\nb read: line one\nline two\n");
}

#[test]
fn codex_that_ignores_piped_stdin_does_not_hang_cao() {
    let f = Fixture::new(&["a"], "echo done");
    f.cao()
        .args(["--", "exec", "x"])
        .write_stdin(vec![b'x'; 1 << 20])
        .assert()
        .success()
        .stdout("done\n");
}
