//! The replica's background task ([`run`]): write behind what this replica learnt, fold in
//! what the others learnt (cooldowns, usage, token sets), keep the heartbeat and the leader
//! lease. The link it works through is [`crate::gateway::pool::replicas::Replicas`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::gateway::pool::replicas::{Learnt, Replicas};
use crate::gateway::pool::state::GatewayState;
use crate::policy::usage::UsageSnapshot;
use crate::store::custody::fingerprint;
use crate::wire::Replica;

/// How often cooldowns learnt by other replicas are read.
const READ_TICK: Duration = Duration::from_millis(250);

/// How often usage snapshots and the heartbeat go out / come in.
const SLOW_TICK: Duration = Duration::from_secs(2);

/// A heartbeat older than this means the replica is gone.
const HEARTBEAT_TTL: Duration = Duration::from_secs(10);

/// How long a shared session pin lives without use.
const AFFINITY_TTL: Duration = Duration::from_secs(6 * 3600);

/// The replica's background task: write behind what this replica learnt, read what the others
/// learnt, heartbeat and leadership. Ends when `stop` fires.
pub async fn run(
    state: Arc<GatewayState>,
    link: Arc<Replicas>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Some(mut inbox) = link.inbox.lock().ok().and_then(|mut i| i.take()) else {
        return;
    };
    let mut fast = tokio::time::interval(READ_TICK);
    let mut slow = tokio::time::interval(SLOW_TICK);
    fast.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    slow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(item) = inbox.recv() => write_behind(&link, item).await,
            _ = fast.tick() => read_cooldowns(&state, &link).await,
            _ = slow.tick() => {
                link.keep_leadership().await;
                let me = Replica {
                    id: link.id.clone(),
                    address: link.address.clone(),
                    heartbeat_ms: crate::store::now_ms(),
                };
                let r = link.shared.heartbeat(&me, HEARTBEAT_TTL).await;
                link.note(r);
                exchange_usage(&state, &link).await;
                sync_tokens(&state, &link).await;
                let names: Vec<String> =
                    state.pool().accounts.iter().map(|a| a.name.clone()).collect();
                link.look_around(&names).await;
            }
        }
    }
    while let Ok(item) = inbox.try_recv() {
        write_behind(&link, item).await;
    }
    exchange_usage(&state, &link).await;
    link.resign().await;
}

async fn write_behind(link: &Replicas, item: Learnt) {
    let r = match item {
        Learnt::Cooldown { account, until_ms } => {
            link.shared.set_cooldown(&account, until_ms).await
        }
        Learnt::Pin { session, account } => {
            link.shared
                .set_affinity(&session, &account, AFFINITY_TTL)
                .await
        }
    };
    link.note(r);
}

/// Fold cooldowns other replicas learnt into the local pool (only ever extends one).
async fn read_cooldowns(state: &GatewayState, link: &Replicas) {
    let pool = state.pool();
    let names: Vec<String> = pool.accounts.iter().map(|a| a.name.clone()).collect();
    let r = link.shared.cooldowns(&names).await;
    let Some(found) = link.note(r) else { return };
    for acct in &pool.accounts {
        if let Some(&until) = found.get(&acct.name) {
            acct.cooldown_until_ms.fetch_max(until, Ordering::Relaxed);
        }
    }
}

/// Send this replica's newer usage snapshots out and take the others' newer ones in.
async fn exchange_usage(state: &GatewayState, link: &Replicas) {
    let pool = state.pool();
    let ours = state.usage.all();
    for acct in &pool.accounts {
        let local = ours.get(&acct.name);
        let r = link.shared.usage(&acct.name).await;
        // None: Redis could not be read (then ours is offered anyway, newest wins there).
        let remote = link.note(r);
        let remote_at = remote.as_ref().and_then(|r| r.as_ref().map(|(at, _)| *at));
        if let Some(snap) = local
            && remote_at.is_none_or(|at| at < snap.seen_at_ms)
            && let Ok(json) = serde_json::to_string(snap)
        {
            // Only what is newer than the shared copy: not every snapshot every round, and not
            // back the one just adopted from another replica.
            let r = link
                .shared
                .put_usage(&acct.name, snap.seen_at_ms, &json)
                .await;
            link.note(r);
            continue;
        }
        let Some(Some((at, json))) = remote else {
            continue;
        };
        if local.is_none_or(|l| l.seen_at_ms < at)
            && let Ok(snap) = serde_json::from_str::<UsageSnapshot>(&json)
        {
            state.usage.observe(&acct.name, snap);
        }
    }
}

/// Catch up with token sets other replicas published (or publish ours, saved while Redis was
/// unreachable): an account whose published refresh token differs from the one this replica
/// holds is reconciled under its refresh lease, in the background ([`crate::shared::custody`]).
async fn sync_tokens(state: &Arc<GatewayState>, link: &Replicas) {
    if !link.reachable() || link.syncing.load(Ordering::Relaxed) {
        return;
    }
    let mut behind = Vec::new();
    for acct in &state.pool().accounts {
        let Some(ours) = acct
            .creds()
            .and_then(|c| c.tokens.refresh_token.as_deref().map(fingerprint))
        else {
            continue;
        };
        let r = link.shared.tokens(&acct.name).await;
        match link.note(r) {
            Some(Some(p)) if p.fp != ours => behind.push(acct.name.clone()),
            Some(_) => {}
            None => return,
        }
    }
    if behind.is_empty() {
        return;
    }
    link.syncing.store(true, Ordering::Relaxed);
    let (broker, flag) = (state.tokens.clone(), link.syncing.clone());
    tokio::task::spawn_blocking(move || {
        for name in behind {
            if let Err(e) = broker.recover(&name) {
                tracing::debug!(account = %name, "token catch-up: {e}");
            }
        }
        flag.store(false, Ordering::Relaxed);
    });
}
