use super::*;

#[test]
fn the_secret_is_private_stable_and_answers_only_good_nonces() {
    let dir = tempfile::tempdir().unwrap_or_else(|_| std::process::abort());
    let store = Store::at(dir.path());
    let Ok(a) = Identity::load_or_create(&store, 4319) else {
        panic!("no identity");
    };
    assert_eq!(
        fsutil::mode_of(&dir.path().join(SECRET_FILE)),
        Some(fsutil::SECRET_FILE_MODE)
    );
    let Ok(b) = Identity::load_or_create(&store, 4319) else {
        panic!("no identity");
    };
    let nonce = "0123456789abcdef0123";
    let q = format!("x=1&nonce={nonce}");
    assert_eq!(a.answer(Some(&q)), b.answer(Some(&q)));
    let secret = read_secret(&store).unwrap_or_default();
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
    assert_eq!(a.answer(Some(&q)), Some(proof(&key, 4319, nonce)));
    assert_ne!(
        a.answer(Some(&q)),
        Some(proof(&key, 4320, nonce)),
        "port bound"
    );
    assert_eq!(a.answer(None), None);
    assert_eq!(a.answer(Some("nonce=short")), None);
    assert_eq!(a.answer(Some("nonce=bad%20chars%20in%20here")), None);
}

#[test]
fn a_damaged_secret_is_backed_up_and_replaced() {
    let dir = tempfile::tempdir().unwrap_or_else(|_| std::process::abort());
    let store = Store::at(dir.path());
    let _ = std::fs::write(dir.path().join(SECRET_FILE), "not a secret");
    assert!(Identity::load_or_create(&store, 1).is_ok());
    assert!(read_secret(&store).is_some());
    let backups = std::fs::read_dir(dir.path())
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(backups, 1);
}
