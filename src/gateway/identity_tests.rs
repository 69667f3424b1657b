use super::*;

const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:10DF 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:10DF 0100007F:D431 01 00000000:00000000 00:00000000 00000000  2000        0 3 1 0 100 0 0 10 0
";
const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:10DF 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  3000        0 4 1 0 100 0 0 10 0
   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  4000        0 5 1 0 100 0 0 10 0
";

#[test]
fn listening_owners_are_read_from_proc_net_tcp() {
    let at = |s: &str| {
        s.parse::<SocketAddr>()
            .unwrap_or_else(|_| std::process::abort())
    };
    // 0x10DF = 4319 on 127.0.0.1 (LISTEN, uid 1000); the ESTABLISHED line is ignored.
    assert_eq!(listening_owners(TCP, at("127.0.0.1:4319")), vec![1000]);
    // 0x1F90 = 8080 on 0.0.0.0 takes connections to any address.
    assert_eq!(listening_owners(TCP, at("127.0.0.1:8080")), vec![0]);
    assert!(listening_owners(TCP, at("127.0.0.1:9")).is_empty());
    assert_eq!(listening_owners(TCP6, at("[::1]:4319")), vec![3000]);
    assert_eq!(listening_owners(TCP6, at("127.0.0.1:8080")), vec![4000]);
    assert!(listening_owners("garbage\n1: x y z\n", at("127.0.0.1:1")).is_empty());
}

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
