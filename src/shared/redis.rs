//! The shared state of several gateways, on Redis.
//!
//! Everything a replica must agree on with the others lives under one key prefix
//! (`cao:` by default):
//!
//! | key | what | lifetime |
//! |---|---|---|
//! | `cao:key-fp` | fingerprint of the state key every replica must share | forever |
//! | `cao:lease:<name>` | a lease (refresh of one account, the poller's leadership): a random fencing value | `PX` ttl, renewed by its holder |
//! | `cao:tokens:<account>` | hash: `fp` (refresh-token fingerprint), `gen`, `sealed` (the token set, sealed) | forever |
//! | `cao:spend:<account>:<fp>` | "this refresh token is being (or was) spent": holder and time | 30 days |
//! | `cao:cooldown:<account>` | cooldown end (ms) | expires at that time |
//! | `cao:usage:<account>` | hash: `at` (ms), `json` (the snapshot); newest wins | 7 days |
//! | `cao:affinity:<key>` | session affinity: account name | `PX` ttl |
//! | `cao:cursor:<name>` | strategy cursor (`INCR`) | forever |
//! | `cao:replica:<id>` + set `cao:replicas` | a replica's heartbeat (JSON) | `PX` ttl |
//!
//! Compare-and-set steps are Lua scripts, so each is one atomic step on the server. Nothing
//! here decides anything: the gateway's policy decides, this room only stores.

use std::collections::HashMap;
use std::time::Duration;

use redis::{AsyncCommands, Script};

use super::connect::{self, StateCa, redact_url};
use super::error::SharedError;
use crate::wire::Replica;

/// How long one Redis call may take before it counts as "Redis unreachable".
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a "being spent" mark outlives the spend (a token older than this is long dead).
const SPEND_MARK_TTL_MS: u64 = 30 * 24 * 3600 * 1000;
/// How long a usage snapshot is kept.
const USAGE_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

/// The latest token set of an account, as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Fingerprint of the refresh token in the set.
    pub fp: String,
    /// Publications so far (1 for the first).
    pub generation: u64,
    /// The sealed set (see [`super::seal`]).
    pub sealed: String,
}

/// How a compare-and-set publish ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publish {
    /// Ours is now the latest, at this generation.
    Won(u64),
    /// Someone published first: adopt theirs instead of spending our copy.
    Lost(Published),
}

/// Acquire: `SET key fence NX PX ttl`.
const RENEW: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1]) else return 0 end";
/// KEYS[1] tokens hash; ARGV: expected fp ('' = none yet), new fp, sealed, new generation.
/// Publishes only over the expected set at the generation just below the new one (the sealed
/// value is bound to its fingerprint and generation, so both must be what the sealer saw).
/// Publishing the fingerprint already there changes nothing.
/// Returns {1, fp, gen, ''} when published (or already there), {0, fp, gen, sealed} when
/// another set is there.
const PUBLISH: &str = r"local h = redis.call('HMGET', KEYS[1], 'fp', 'gen', 'sealed')
local cur, gen = h[1], tonumber(h[2]) or 0
if cur == ARGV[2] then return {1, cur, gen, ''} end
if ((cur == false and ARGV[1] == '') or cur == ARGV[1]) and gen + 1 == tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'fp', ARGV[2], 'sealed', ARGV[3], 'gen', ARGV[4])
  return {1, ARGV[2], gen + 1, ''}
end
return {0, cur or '', gen, h[3] or ''}";
/// KEYS[1] cooldown key; ARGV[1] until ms. Only ever extends.
const COOLDOWN: &str = r"local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[1]) return 1 end
return 0";
/// KEYS[1] usage hash; ARGV: at ms, json, ttl ms. Newest wins.
const USAGE: &str = r"local cur = tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('HSET', KEYS[1], 'at', ARGV[1], 'json', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1 end
return 0";

/// A connection to the shared state (cheap to clone; reconnects by itself, see
/// [`Self::after_error`]).
#[derive(Clone)]
pub struct SharedState {
    conn: connect::Manager,
    prefix: String,
    url: String,
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedState")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl SharedState {
    /// Connect to `url` (`redis://[user:pass@]host:port/db` or `rediss://` for TLS, checked
    /// against the web PKI roots).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, SharedError> {
        Self::connect_trusting(url, prefix, None).await
    }

    /// [`Self::connect`]; with `ca`, a `rediss://` server's certificate is checked against those
    /// CA certificates instead. The first call (a `PING`) tells a refused password or an
    /// untrusted certificate from an unreachable server.
    pub async fn connect_trusting(
        url: &str,
        prefix: &str,
        ca: Option<&StateCa>,
    ) -> Result<Self, SharedError> {
        let shown = redact_url(url);
        let client = connect::client(url, &shown, ca)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(1);
        let conn = connect::Manager::open(client, config, &shown).await?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            url: shown,
        })
    }

    /// The URL, password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A call failed with `e`: if the connection may be stuck on it (a refused password), a new
    /// one is dialled in the background.
    pub fn after_error(&self, e: &SharedError) {
        if let SharedError::Call(source) = e {
            self.conn.after_error(source);
        }
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                k.push(':');
            }
            k.push_str(p);
        }
        k
    }

    /// Record our key's fingerprint, or refuse when the stored one differs.
    pub async fn claim_key(&self, fingerprint: &str) -> Result<(), SharedError> {
        let mut c = self.conn.get();
        let key = self.key(&["key-fp"]);
        let _: bool = redis::cmd("SET")
            .arg(&key)
            .arg(fingerprint)
            .arg("NX")
            .query_async(&mut c)
            .await
            .map(|v: Option<String>| v.is_some())?;
        let stored: Option<String> = c.get(&key).await?;
        match stored {
            Some(theirs) if theirs != fingerprint => Err(SharedError::KeyMismatch {
                ours: fingerprint.to_string(),
                theirs,
            }),
            _ => Ok(()),
        }
    }

    /// Try to take the lease `name` for `ttl` as `owner`; `Some(fence)` when we hold it. The
    /// fence is `owner/<random>`, so whoever reads it knows the holder.
    pub async fn try_lease(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<String>, SharedError> {
        let fence = format!(
            "{owner}/{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        let mut c = self.conn.get();
        let ok: Option<String> = redis::cmd("SET")
            .arg(self.key(&["lease", name]))
            .arg(&fence)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut c)
            .await?;
        Ok(ok.map(|_| fence))
    }

    /// Extend a lease we hold; `false` when it lapsed (someone else may hold it now).
    pub async fn renew_lease(
        &self,
        name: &str,
        fence: &str,
        ttl: Duration,
    ) -> Result<bool, SharedError> {
        let mut c = self.conn.get();
        let n: i64 = Script::new(RENEW)
            .key(self.key(&["lease", name]))
            .arg(fence)
            .arg(millis(ttl))
            .invoke_async(&mut c)
            .await?;
        Ok(n == 1)
    }

    /// Give a lease back (only if it is still ours).
    pub async fn release_lease(&self, name: &str, fence: &str) -> Result<bool, SharedError> {
        let mut c = self.conn.get();
        let n: i64 = Script::new(RELEASE)
            .key(self.key(&["lease", name]))
            .arg(fence)
            .invoke_async(&mut c)
            .await?;
        Ok(n == 1)
    }

    /// Who holds lease `name` (its fencing value), if anyone.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<String>, SharedError> {
        let mut c = self.conn.get();
        Ok(c.get(self.key(&["lease", name])).await?)
    }

    /// The latest published token set of `account`.
    pub async fn tokens(&self, account: &str) -> Result<Option<Published>, SharedError> {
        let mut c = self.conn.get();
        let h: HashMap<String, String> = c.hgetall(self.key(&["tokens", account])).await?;
        Ok(match (h.get("fp"), h.get("sealed")) {
            (Some(fp), Some(sealed)) => Some(Published {
                fp: fp.clone(),
                generation: h.get("gen").and_then(|g| g.parse().ok()).unwrap_or(0),
                sealed: sealed.clone(),
            }),
            _ => None,
        })
    }

    /// Publish a new token set (`sealed`, for `generation`) if the latest is still the one
    /// whose refresh token we spent (`expected`; `None` for the first publication) at
    /// `generation - 1`. Publishing the same fingerprint again is idempotent.
    pub async fn publish_tokens(
        &self,
        account: &str,
        expected: Option<&str>,
        new_fp: &str,
        sealed: &str,
        generation: u64,
    ) -> Result<Publish, SharedError> {
        let mut c = self.conn.get();
        let (won, fp, generation, sealed): (i64, String, u64, String) = Script::new(PUBLISH)
            .key(self.key(&["tokens", account]))
            .arg(expected.unwrap_or(""))
            .arg(new_fp)
            .arg(sealed)
            .arg(generation)
            .invoke_async(&mut c)
            .await?;
        Ok(if won == 1 {
            Publish::Won(generation)
        } else {
            Publish::Lost(Published {
                fp,
                generation,
                sealed,
            })
        })
    }

    /// Durably mark refresh token `fp` of `account` as being spent by `holder`. `false` when
    /// it already was (by anyone): then it must not be sent again.
    pub async fn mark_spending(
        &self,
        account: &str,
        fp: &str,
        holder: &str,
    ) -> Result<bool, SharedError> {
        let mut c = self.conn.get();
        let ok: Option<String> = redis::cmd("SET")
            .arg(self.key(&["spend", account, fp]))
            .arg(holder)
            .arg("NX")
            .arg("PX")
            .arg(SPEND_MARK_TTL_MS)
            .query_async(&mut c)
            .await?;
        Ok(ok.is_some())
    }

    /// Who marked `fp` as being spent, if anyone.
    pub async fn spend_mark(&self, account: &str, fp: &str) -> Result<Option<String>, SharedError> {
        let mut c = self.conn.get();
        Ok(c.get(self.key(&["spend", account, fp])).await?)
    }

    /// Lift a mark for a token that was, after all, never sent.
    pub async fn unmark_spending(&self, account: &str, fp: &str) -> Result<(), SharedError> {
        let mut c = self.conn.get();
        let _: i64 = c.del(self.key(&["spend", account, fp])).await?;
        Ok(())
    }

    /// Record a cooldown until `until_ms` (only ever extends it; the key expires then).
    pub async fn set_cooldown(&self, account: &str, until_ms: i64) -> Result<(), SharedError> {
        let mut c = self.conn.get();
        let _: i64 = Script::new(COOLDOWN)
            .key(self.key(&["cooldown", account]))
            .arg(until_ms)
            .invoke_async(&mut c)
            .await?;
        Ok(())
    }

    /// Cooldown ends of `accounts` that are still in force.
    pub async fn cooldowns(
        &self,
        accounts: &[String],
    ) -> Result<HashMap<String, i64>, SharedError> {
        if accounts.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<String> = accounts
            .iter()
            .map(|a| self.key(&["cooldown", a]))
            .collect();
        let mut c = self.conn.get();
        let vals: Vec<Option<i64>> = redis::cmd("MGET").arg(&keys).query_async(&mut c).await?;
        Ok(accounts
            .iter()
            .zip(vals)
            .filter_map(|(a, v)| v.map(|v| (a.clone(), v)))
            .collect())
    }

    /// Store a usage snapshot observed at `at_ms` unless a newer one is there.
    pub async fn put_usage(
        &self,
        account: &str,
        at_ms: i64,
        json: &str,
    ) -> Result<bool, SharedError> {
        let mut c = self.conn.get();
        let n: i64 = Script::new(USAGE)
            .key(self.key(&["usage", account]))
            .arg(at_ms)
            .arg(json)
            .arg(USAGE_TTL_MS)
            .invoke_async(&mut c)
            .await?;
        Ok(n == 1)
    }

    /// The latest usage snapshot of `account`: (observed at ms, JSON).
    pub async fn usage(&self, account: &str) -> Result<Option<(i64, String)>, SharedError> {
        let mut c = self.conn.get();
        let (at, json): (Option<i64>, Option<String>) = redis::cmd("HMGET")
            .arg(self.key(&["usage", account]))
            .arg("at")
            .arg("json")
            .query_async(&mut c)
            .await?;
        Ok(at.zip(json))
    }

    /// Pin session `key` to `account` for `ttl`.
    pub async fn set_affinity(
        &self,
        key: &str,
        account: &str,
        ttl: Duration,
    ) -> Result<(), SharedError> {
        let mut c = self.conn.get();
        let _: () = redis::cmd("SET")
            .arg(self.key(&["affinity", key]))
            .arg(account)
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// The account session `key` is pinned to.
    pub async fn affinity(&self, key: &str) -> Result<Option<String>, SharedError> {
        let mut c = self.conn.get();
        Ok(c.get(self.key(&["affinity", key])).await?)
    }

    /// Advance the strategy cursor `name`; returns the new value.
    pub async fn next_cursor(&self, name: &str) -> Result<u64, SharedError> {
        let mut c = self.conn.get();
        Ok(c.incr(self.key(&["cursor", name]), 1u64).await?)
    }

    /// Announce this replica for `ttl`.
    pub async fn heartbeat(&self, me: &Replica, ttl: Duration) -> Result<(), SharedError> {
        let json = serde_json::to_string(me).unwrap_or_default();
        let mut c = self.conn.get();
        let _: () = redis::pipe()
            .cmd("SET")
            .arg(self.key(&["replica", &me.id]))
            .arg(json)
            .arg("PX")
            .arg(millis(ttl))
            .ignore()
            .cmd("SADD")
            .arg(self.key(&["replicas"]))
            .arg(&me.id)
            .ignore()
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// The replicas whose heartbeat has not lapsed (lapsed ones are dropped from the set).
    pub async fn replicas(&self) -> Result<Vec<Replica>, SharedError> {
        let mut c = self.conn.get();
        let ids: Vec<String> = c.smembers(self.key(&["replicas"])).await?;
        let mut out = Vec::new();
        for id in ids {
            let v: Option<String> = c.get(self.key(&["replica", &id])).await?;
            match v.and_then(|j| serde_json::from_str::<Replica>(&j).ok()) {
                Some(r) => out.push(r),
                None => {
                    let _: i64 = c.srem(self.key(&["replicas"]), &id).await?;
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
