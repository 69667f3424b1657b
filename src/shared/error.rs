//! What can go wrong with the shared state ([`SharedError`]): a bad URL or CA file, a Redis
//! that is unreachable, refuses the credentials or is not trusted, a failed call, another
//! replica's state key. A leaf: the client ([`super::redis`]) and how it connects
//! ([`super::connect`]) both answer with it.

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("the state URL {url:?} is not a redis:// or rediss:// URL")]
    BadUrl {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("Redis at {url} is unreachable")]
    Unreachable {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    #[error(
        "Redis at {url} refused the credentials (check the user and password in the --state URL)"
    )]
    Refused {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    #[error(
        "Redis at {url} presented a certificate this replica does not trust (a private CA? pass it with --state-ca-file)"
    )]
    Untrusted {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("the state CA file {path} is not usable: {detail}")]
    BadCa { path: String, detail: String },
    #[error("--state-ca-file {path} is for a TLS connection, but {url} is not rediss://")]
    CaWithoutTls { url: String, path: String },
    #[error("Redis call failed")]
    Call(#[from] redis::RedisError),
    #[error(
        "this replica's state key (fingerprint {ours}) differs from the one the other replicas use ({theirs}); start every replica with the same --state-key-file"
    )]
    KeyMismatch { ours: String, theirs: String },
}
