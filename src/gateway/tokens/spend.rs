//! One look at a login and, when it is due, one spend of its refresh token
//! ([`TokenBroker::spend_once`], inside the broker's single flight): read the login under the
//! custody lease, decide whether a refresh is needed at all, mark the token as being spent,
//! send it once, and save whatever came back (the rules are in [`crate::gateway::tokens::broker`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::gateway::tokens::broker::{CredError, Record, TokenBroker, Want};
use crate::gateway::tokens::send::{self, Sent};
use crate::policy::token_answer::{self, REQUEST_MARGIN_CAP_MS, Rotated, TokenAnswer};
use crate::store::auth_file::{TokenSet, decode_claims};
use crate::store::custody::{Recovered, Settle, fingerprint};
use crate::store::{AuthState, StoreError};

fn blocking_err(e: tokio::task::JoinError) -> CredError {
    CredError::Transient(format!("custody task failed: {e}"))
}

fn store_err(e: StoreError) -> CredError {
    CredError::Transient(e.to_string())
}

impl TokenBroker {
    /// One look at the login and, if needed, one spend. `Ok((tokens, false))`: a new refresh
    /// token was saved but the answer had no usable access token.
    pub(super) async fn spend_once(
        self: &Arc<Self>,
        account: &str,
        rec: &Record,
        want: &Want,
    ) -> Result<(TokenSet, bool), CredError> {
        let (custody, name) = (self.custody.clone(), account.to_string());
        let (lease, disk, ledger, recovered) = tokio::task::spawn_blocking(move || {
            let lease = custody.lease(&name)?;
            let recovered = custody.recover(&lease, &name)?;
            let (disk, ledger) = custody.read(&lease, &name)?;
            Ok::<_, StoreError>((lease, disk, ledger, recovered))
        })
        .await
        .map_err(blocking_err)?
        .map_err(store_err)?;
        let disk = match disk {
            AuthState::Present(f) => f,
            _ => return Err(CredError::NoLogin),
        };
        let disk_fp = disk
            .tokens()
            .and_then(|t| t.refresh_token)
            .map(|r| fingerprint(&r));
        let disk_stale = recovered == Recovered::Interrupted
            || disk_fp.as_deref().is_some_and(|f| ledger.is_spent(f));
        // Our rotated tokens that could not be saved win over a file still holding the token
        // they replaced; a file that moved on otherwise (a new login) wins over them.
        let unsaved = rec.unsaved.lock().ok().and_then(|u| u.clone());
        let (mut file, interrupted) = match unsaved {
            Some(mem) if disk_stale => (mem, false),
            Some(_) => {
                if let Ok(mut u) = rec.unsaved.lock() {
                    *u = None;
                }
                (disk, recovered == Recovered::Interrupted)
            }
            None => (disk, recovered == Recovered::Interrupted),
        };
        let current = file.tokens().ok_or(CredError::NoLogin)?;
        let now = crate::store::now_ms();
        let claims = decode_claims(&current.access_token).unwrap_or_default();
        let exp_ms = claims.exp.map(|e| e.saturating_mul(1000));
        let iat_ms = claims.iat.map(|i| i.saturating_mul(1000));
        let usable =
            token_answer::is_header_safe(&current.access_token) && exp_ms.is_none_or(|e| e > now);
        let not_due = |cap: i64| usable && !token_answer::due(now, exp_ms, iat_ms, cap);
        let reason = match want {
            Want::Fresher { stale } => {
                if not_due(REQUEST_MARGIN_CAP_MS) && stale.as_ref() != Some(&current.access_token) {
                    return Ok((current, true));
                }
                if stale.is_some() {
                    "unauthorized"
                } else {
                    "proactive_expiry"
                }
                .to_string()
            }
            Want::Due { cap_ms } => {
                if not_due(*cap_ms) {
                    return Ok((current, true));
                }
                "proactive_expiry".to_string()
            }
            Want::Presented(p) => {
                if current.refresh_token.as_deref() != Some(p.refresh_token.as_str()) {
                    // Idempotent: a token already rotated gets the current login, no spend.
                    if !ledger.knows(&fingerprint(&p.refresh_token)) {
                        return Err(CredError::Unknown);
                    }
                    if not_due(REQUEST_MARGIN_CAP_MS) {
                        return Ok((current, true));
                    }
                }
                p.reason
                    .clone()
                    .unwrap_or_else(|| "proactive_expiry".into())
            }
        };
        let Some(refresh_token) = current.refresh_token.clone() else {
            return Err(CredError::NeedsLogin);
        };
        let fp = fingerprint(&refresh_token);
        // Logs name the token generation by its fingerprint (never the token).
        let generation = fp.get(..12).unwrap_or(&fp).to_string();
        if interrupted || ledger.knows(&fp) || ledger.descends_from_rejected(&fp) {
            tracing::warn!(
                account,
                generation = %generation,
                "the refresh token may already be spent (an earlier refresh was interrupted, or it was rejected); not sending it again: log the account in again"
            );
            return Err(CredError::NeedsLogin);
        }

        // Spend only what can be saved.
        let (custody, name, rt) = (
            self.custody.clone(),
            account.to_string(),
            refresh_token.clone(),
        );
        let (lease, slot) = tokio::task::spawn_blocking(move || {
            let slot = custody.begin_spend(&lease, &name, &rt);
            (lease, slot)
        })
        .await
        .map_err(blocking_err)?;
        let slot = slot.map_err(|e| {
            tracing::error!(
                account,
                generation = %generation,
                "cannot prepare the save of a refresh ({e}); the refresh token was not sent"
            );
            CredError::Transient(format!(
                "the new tokens could not be saved, so none were requested: {e}"
            ))
        })?;
        let client_info = match want {
            Want::Presented(p) => (p.user_agent.clone(), p.originator.clone()),
            _ => (None, None),
        };
        let sent = send::send(
            &self.client,
            &self.endpoint,
            &refresh_token,
            &reason,
            client_info,
        )
        .await;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let rotated = match sent {
            Sent::Answer(TokenAnswer::Spent(r)) => r,
            Sent::Lost(why) => {
                tracing::warn!(
                    account,
                    generation = %generation,
                    "token endpoint answer lost ({why}); counting the refresh token as spent"
                );
                Rotated {
                    flaw: Some("the answer was lost"),
                    ..Rotated::default()
                }
            }
            other => {
                self.refresh_failures.fetch_add(1, Ordering::Relaxed);
                let (rejected, err) = match other {
                    Sent::Answer(TokenAnswer::Rejected(code)) => {
                        tracing::warn!(
                            account,
                            generation = %generation,
                            "token refresh rejected ({code}); the account needs a new login"
                        );
                        (true, CredError::NeedsLogin)
                    }
                    Sent::Answer(TokenAnswer::Transient(why)) | Sent::Unsent(why) => {
                        tracing::warn!(account, generation = %generation, "token refresh failed: {why}");
                        (false, CredError::Transient(why))
                    }
                    _ => (false, CredError::Transient("token refresh failed".into())),
                };
                let (custody, name, old) = (
                    self.custody.clone(),
                    account.to_string(),
                    refresh_token.clone(),
                );
                let _ = tokio::task::spawn_blocking(move || {
                    let how = if rejected {
                        Settle::Rejected { old: &old }
                    } else {
                        Settle::Unsent
                    };
                    if let Err(e) = custody.settle(&lease, &name, how) {
                        tracing::warn!(account = %name, "could not update the custody ledger: {e}");
                    }
                })
                .await;
                return Err(err);
            }
        };
        if let Some(flaw) = rotated.flaw {
            self.refresh_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(account, generation = %generation, "token endpoint answered 2xx but {flaw}");
        }
        let Some(new_rt) = rotated.refresh_token.clone() else {
            let (custody, name, old) = (
                self.custody.clone(),
                account.to_string(),
                refresh_token.clone(),
            );
            let _ = tokio::task::spawn_blocking(move || {
                let _ = custody.settle(
                    &lease,
                    &name,
                    Settle::Spent {
                        old: &old,
                        new: None,
                    },
                );
            })
            .await;
            tracing::error!(
                account,
                generation = %generation,
                "the refresh token was spent and no new one could be read; the account needs a new login"
            );
            return Err(CredError::NeedsLogin);
        };
        let tokens = TokenSet {
            access_token: rotated
                .access_token
                .clone()
                .unwrap_or_else(|| current.access_token.clone()),
            id_token: rotated.id_token.clone().or(current.id_token.clone()),
            refresh_token: Some(new_rt.clone()),
            account_id: current.account_id.clone(),
        };
        file.set_tokens(&tokens, &jiff::Timestamp::now().to_string());
        let (custody, name, old, copy) = (
            self.custody.clone(),
            account.to_string(),
            refresh_token.clone(),
            file.clone(),
        );
        let saved = tokio::task::spawn_blocking(move || {
            let published = custody.publish(&lease, &name, slot, Some(&old), &copy);
            if let Err(e) = custody.settle(
                &lease,
                &name,
                Settle::Spent {
                    old: &old,
                    new: Some(&new_rt),
                },
            ) {
                tracing::warn!(account = %name, "could not update the custody ledger: {e}");
            }
            published
        })
        .await
        .map_err(blocking_err)?;
        match saved {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                account,
                generation = %generation,
                "auth.json or the shared state moved on while its refresh token was being spent (another replica won, or a program refreshed on its own); saved the newest tokens"
            ),
            Err(e) => {
                tracing::error!(
                    account,
                    generation = %generation,
                    "could not save the refreshed tokens ({e}); keeping them in memory and retrying"
                );
                if let Ok(mut u) = rec.unsaved.lock() {
                    *u = Some(file);
                }
            }
        }
        if rotated.access_token.is_none() {
            return Ok((tokens, false));
        }
        tracing::info!(account, "access token refreshed");
        Ok((tokens, true))
    }
}
