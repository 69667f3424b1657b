//! Real headless Chromium for the page and perimeter tests: find it (Debian's `chromium`;
//! scripts/test installs it, and without it the tests skip locally and fail under CI), run it
//! on a URL, dump a page's DOM; and the gateway those tests open.

use std::path::PathBuf;
use std::process::Command;

use cao::mock::{MockUpstream, Scenario};

use super::TestEnv;
use super::gateway::GatewayProc;

/// The Chromium binary (`CAO_CHROMIUM`, else Debian's), or `None` (the test skips).
pub fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("CAO_CHROMIUM").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/chromium")),
        Some(PathBuf::from("/usr/bin/chromium-browser")),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.is_file());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "chromium is required under CI for the status-page tests but was not found; \
                 install it with `apt-get install -y chromium` (scripts/test does) or set CAO_CHROMIUM"
            );
        }
        eprintln!("skipping: chromium not installed (apt-get install -y chromium)");
    }
    found
}

/// Run headless Chromium on `url` with `extra` args; returns (stdout, console lines).
pub fn run_chromium(bin: &PathBuf, url: &str, extra: &[&str]) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let console: Vec<String> = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).to_string(), console)
}

/// The DOM of `url` after Chromium ran its scripts (5 s of virtual time), and the console.
pub async fn dump_dom(bin: PathBuf, url: String) -> (String, Vec<String>) {
    tokio::task::spawn_blocking(move || {
        run_chromium(&bin, &url, &["--virtual-time-budget=5000", "--dump-dom"])
    })
    .await
    .unwrap()
}

/// A gateway in front of a mock upstream with `scenario`, for `accounts` (name, account id)
/// logged in for an hour, started with `extra` too: what the browser tests open.
pub async fn page_gateway(
    scenario: Scenario,
    accounts: &[(&str, &str)],
    extra: &[&str],
) -> (TestEnv, MockUpstream, GatewayProc) {
    let env = TestEnv::new();
    for (name, id) in accounts {
        env.add_logged_in(name, id, super::now_secs() + 3600);
    }
    let m = MockUpstream::spawn("127.0.0.1", 0, scenario).await.unwrap();
    let (base, token) = (m.base_url(), m.token_url());
    let mut args = vec!["--base-url", base.as_str(), "--token-url", token.as_str()];
    args.extend_from_slice(extra);
    let g = GatewayProc::start(&env, &args);
    (env, m, g)
}
