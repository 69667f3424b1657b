//! `cao` on a pseudo-terminal of a chosen size, driven like a person would: wait for text,
//! type keys, read everything the terminal received.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::TestEnv;

/// A running `cao` on its own terminal.
pub struct Pty {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Box<dyn portable_pty::MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    seen: Arc<Mutex<Vec<u8>>>,
    collector: Option<std::thread::JoinHandle<()>>,
}

impl Pty {
    /// Start `cao --data-dir <env> <args>` on a `rows` x `cols` terminal (TERM=xterm-256color,
    /// NO_COLOR set so text is plain), with `extra_env` added.
    pub fn spawn(
        env: &TestEnv,
        args: &[&str],
        rows: u16,
        cols: u16,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let pair = portable_pty::native_pty_system()
            .openpty(portable_pty::PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = portable_pty::CommandBuilder::new(assert_cmd::cargo::cargo_bin("cao"));
        cmd.arg("--data-dir");
        cmd.arg(env.data_dir());
        cmd.args(args);
        cmd.env("HOME", env.dir.path().join("home"));
        cmd.env("TERM", "xterm-256color");
        cmd.env("NO_COLOR", "1");
        cmd.env_remove("CAO_DATA_DIR");
        cmd.env_remove("COLUMNS");
        cmd.env_remove("LINES");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.cwd(env.dir.path());
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let collector = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self {
            child,
            master: pair.master,
            writer,
            seen,
            collector: Some(collector),
        }
    }

    /// Everything the terminal received so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Wait (up to 20 s) until the terminal has received `text`.
    pub fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.output().contains(text) {
            assert!(
                Instant::now() < deadline,
                "never saw {text:?} on the terminal:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Type `keys` (`b"\x03"` is Ctrl-C: the terminal turns it into SIGINT for the
    /// foreground process group, exactly as for a person).
    pub fn send(&mut self, keys: &[u8]) {
        self.writer.write_all(keys).unwrap();
        self.writer.flush().unwrap();
    }

    /// Wait (up to 30 s) for the exit; returns everything shown and the exit code.
    pub fn finish(mut self) -> (String, u32) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("cao did not exit within 30 s:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The last bytes may still be on their way: the reader ends by itself once the
        // terminal's other side is closed and everything written to it is read. Wait for that
        // (bounded: a process left behind may hold the terminal open), then close ours.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.collector.as_ref().is_some_and(|c| !c.is_finished()) && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = self.output();
        drop(self.writer);
        drop(self.master);
        if let Some(c) = self.collector.take() {
            let _ = c.join();
        }
        (out, status.exit_code())
    }
}
