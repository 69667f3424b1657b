//! `cao gateway status`: what a replica of a shared pool (`--state`) knows of the others: the
//! shared state, whether it answers, the replicas alive, who leads and who is refreshing.

use std::io::Write;

use anyhow::Result;

use crate::render::time;
use crate::wire::SharedView;

/// The shared-state lines under "Live:".
pub fn write(out: &mut impl Write, sv: &SharedView, now: i64) -> Result<()> {
    let answers = if sv.reachable {
        "answers"
    } else {
        "UNREACHABLE: serving with tokens that are still valid, no token refresh until it is back"
    };
    writeln!(out, "  shared     {} ({answers})", sv.url)?;
    writeln!(out, "  state key  fingerprint {}", sv.key_fingerprint)?;
    let leader = sv.leader.as_deref().unwrap_or("none yet");
    writeln!(out, "  this       {} (leader: {leader})", sv.replica)?;
    for r in &sv.replicas {
        writeln!(
            out,
            "  replica    {} at {}, heartbeat {}",
            r.id,
            r.address,
            time::relative(r.heartbeat_ms, now)
        )?;
    }
    for l in &sv.refresh_leases {
        writeln!(
            out,
            "  refreshing {} (lease held by {})",
            l.account, l.holder
        )?;
    }
    writeln!(
        out,
        "  {} refresh lease waits, {} compare-and-set losses, {} Redis errors",
        sv.lease_waits, sv.cas_losses, sv.redis_errors
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Replica;

    #[test]
    fn the_shared_lines_name_the_replicas_the_leader_and_an_unreachable_redis() {
        let sv = SharedView {
            url: "redis://:***@r:6379/0".into(),
            replica: "a-1".into(),
            reachable: false,
            leader: Some("b-2".into()),
            refresh_leases: vec![crate::wire::LeaseView {
                account: "work".into(),
                holder: "b-2".into(),
            }],
            key_fingerprint: "1f2e".into(),
            replicas: vec![Replica {
                id: "b-2".into(),
                address: "10.0.0.2:4319".into(),
                heartbeat_ms: 1_000_000,
            }],
            lease_waits: 3,
            cas_losses: 1,
            redis_errors: 7,
        };
        let mut out = Vec::new();
        write(&mut out, &sv, 1_005_000).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("UNREACHABLE"), "{text}");
        assert!(text.contains("a-1 (leader: b-2)"), "{text}");
        assert!(
            text.contains("b-2 at 10.0.0.2:4319, heartbeat 5s ago"),
            "{text}"
        );
        assert!(
            text.contains("refreshing work (lease held by b-2)"),
            "{text}"
        );
        assert!(text.contains("3 refresh lease waits, 1 compare-and-set losses, 7 Redis errors"));
        assert!(!text.contains("hunter"));
    }
}
