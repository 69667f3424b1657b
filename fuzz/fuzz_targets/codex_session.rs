//! What `cao run` reads from Codex to continue a session on another account: rollout file names
//! and lines (written by Codex), and the user's own command line rewritten with `resume <id>`.
//! Nothing may panic; a rewritten command line must carry the session id and keep the options
//! that came before the subcommand.
#![no_main]

use cao::policy::codex_args::{
    continue_args, is_interactive, looks_like_session_id, rollout_line_is_model_output,
    session_id_from_rollout_name,
};
use libfuzzer_sys::fuzz_target;

const ID: &str = "01a20f6c-5deb-7bf0-b88f-0458697f3e9a";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines() {
        let _ = rollout_line_is_model_output(line);
        let _ = looks_like_session_id(line);
        if let Some(id) = session_id_from_rollout_name(line) {
            assert!(line.contains(id));
        }
    }
    // The input's words (split on spaces) as a codex command line.
    let args: Vec<String> = text.split(' ').map(str::to_string).collect();
    let _ = is_interactive(&args);
    if let Some(new) = continue_args(&args, ID) {
        assert!(
            new.iter().any(|a| a == ID),
            "{args:?} -> {new:?} lost the session id"
        );
    }
});
