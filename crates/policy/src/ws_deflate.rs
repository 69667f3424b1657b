//! permessage-deflate (RFC 7692 section 7) negotiation on one WebSocket hop, as pure functions
//! of the `Sec-WebSocket-Extensions` header values: what a server answers an offer
//! ([`answer`]), what a client offers ([`offer`]) and whether a server's answer to that offer
//! is one the client may accept ([`accept_answer`]).
//!
//! The compressor behind it (flate2's pure-Rust backend) always uses a 32 KiB window (15
//! bits) for what it sends and can inflate any window: so an offer that asks the server to
//! send with a smaller window (`server_max_window_bits` under 15) is declined, a
//! `client_max_window_bits` offer (Codex 0.171 sends it without a value) is accepted and not
//! answered (RFC 7692 7.1.2.2: then the client may use any window), and a client never offers
//! `client_max_window_bits` (it could not honour a value in the answer).

/// The extension's name in the header.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The parameters of one `permessage-deflate` element (an offer or an answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits=N` (it always has a value).
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits` (`Some(None)`: without a value, as Codex offers it).
    pub client_max_window_bits: Option<Option<u8>>,
}

/// What one side wants for its hop beyond what the peer asks: no context takeover per
/// direction (each message compressed alone, so no deflate state is kept per socket between
/// messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wants {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
}

/// Why a client must fail the connection on a server's answer (RFC 6455 9.1, RFC 7692 5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("upstream answered an extension that was not offered: {0}")]
    NotOffered(String),
    #[error("upstream answered permessage-deflate with parameters this client cannot use: {0}")]
    BadParams(String),
}

fn window_bits(v: Option<&str>) -> Option<u8> {
    let v = v?.trim().trim_matches('"');
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
}

/// One element's parameters (`None`: not valid per RFC 7692 7: unknown or repeated
/// parameter, bad value).
fn parse_params<'a>(params: impl Iterator<Item = &'a str>) -> Option<Params> {
    let mut p = Params::default();
    let mut seen: Vec<&str> = Vec::new();
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v)),
            None => (param.trim(), None),
        };
        if name.is_empty() {
            continue;
        }
        if seen.contains(&name) {
            return None;
        }
        seen.push(name);
        match name {
            "server_no_context_takeover" if value.is_none() => p.server_no_context_takeover = true,
            "client_no_context_takeover" if value.is_none() => p.client_no_context_takeover = true,
            "server_max_window_bits" => p.server_max_window_bits = Some(window_bits(value)?),
            "client_max_window_bits" => {
                p.client_max_window_bits = Some(match value {
                    None => None,
                    Some(v) => Some(window_bits(Some(v))?),
                });
            }
            _ => return None,
        }
    }
    Some(p)
}

/// Every element of the header values, in order: its name and its parameters (`None` when
/// it is permessage-deflate with invalid parameters; other extensions' parameters are not
/// read).
fn elements<'a>(values: &[&'a str]) -> Vec<(&'a str, Option<Params>)> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            let mut parts = element.split(';');
            let name = parts.next()?.trim();
            if name.is_empty() {
                return None;
            }
            let params = if name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
                parse_params(parts)
            } else {
                None
            };
            Some((name, params))
        })
        .collect()
}

/// The header value of `p`, parameters in a fixed order.
pub fn render(p: &Params) -> String {
    let mut s = PERMESSAGE_DEFLATE.to_string();
    if p.server_no_context_takeover {
        s.push_str("; server_no_context_takeover");
    }
    if p.client_no_context_takeover {
        s.push_str("; client_no_context_takeover");
    }
    if let Some(b) = p.server_max_window_bits {
        s.push_str(&format!("; server_max_window_bits={b}"));
    }
    match p.client_max_window_bits {
        Some(Some(b)) => s.push_str(&format!("; client_max_window_bits={b}")),
        Some(None) => s.push_str("; client_max_window_bits"),
        None => {}
    }
    s
}

/// A server's answer to the client's `Sec-WebSocket-Extensions` values: the first
/// permessage-deflate offer it can honour, with the client's no-context-takeover requests
/// and the server's own `wants`; `None`: no extension (nothing offered, or nothing usable).
pub fn answer(offers: &[&str], wants: Wants) -> Option<Params> {
    elements(offers)
        .into_iter()
        .filter_map(|(_, p)| p)
        .find(|p| p.server_max_window_bits.is_none_or(|b| b == 15))
        .map(|offer| Params {
            server_no_context_takeover: offer.server_no_context_takeover
                || wants.server_no_context_takeover,
            client_no_context_takeover: offer.client_no_context_takeover
                || wants.client_no_context_takeover,
            server_max_window_bits: None,
            client_max_window_bits: None,
        })
}

/// What a client offers.
pub fn offer(wants: Wants) -> Params {
    Params {
        server_no_context_takeover: wants.server_no_context_takeover,
        client_no_context_takeover: wants.client_no_context_takeover,
        server_max_window_bits: None,
        client_max_window_bits: None,
    }
}

/// Whether one more socket may keep its deflate context when `open` already do, with room
/// for `cap`.
pub fn keeps_context(open: usize, cap: usize) -> bool {
    open < cap
}

/// Check a server's answer (its `Sec-WebSocket-Extensions` values) to `offered`: `Ok(None)`
/// when it declined (goes on uncompressed), `Ok(Some(params))` as both sides then use them.
pub fn accept_answer(values: &[&str], offered: &Params) -> Result<Option<Params>, Refusal> {
    let all = elements(values);
    let mut agreed = None;
    for (name, params) in all {
        if !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) || agreed.is_some() {
            return Err(Refusal::NotOffered(values.join(", ")));
        }
        let Some(p) = params else {
            return Err(Refusal::BadParams(values.join(", ")));
        };
        // A window limit for what this client sends was not offered (RFC 7692 7.1.2.2). A
        // server that leaves out a requested server_no_context_takeover is taken at its word:
        // this side then keeps its inflater's context (it reads either way), rather than
        // failing the socket.
        if p.client_max_window_bits.is_some() {
            return Err(Refusal::BadParams(values.join(", ")));
        }
        agreed = Some(Params {
            client_no_context_takeover: p.client_no_context_takeover
                || offered.client_no_context_takeover,
            ..p
        });
    }
    Ok(agreed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODEX_OFFER: &str = "permessage-deflate; client_max_window_bits";

    #[test]
    fn codex_offer_is_accepted_without_a_window_answer() {
        let a = answer(&[CODEX_OFFER], Wants::default()).unwrap();
        assert_eq!(render(&a), "permessage-deflate");
        let tight = Wants {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
        };
        let a = answer(&[CODEX_OFFER], tight).unwrap();
        assert_eq!(
            render(&a),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn no_offer_or_other_extensions_get_no_answer() {
        assert_eq!(answer(&[], Wants::default()), None);
        assert_eq!(answer(&["x-webkit-deflate-frame"], Wants::default()), None);
        assert_eq!(answer(&[""], Wants::default()), None);
    }

    #[test]
    fn offers_the_server_cannot_honour_are_declined_and_the_next_one_taken() {
        // A 10-bit window for what the server sends: not with this compressor.
        assert_eq!(
            answer(
                &["permessage-deflate; server_max_window_bits=10"],
                Wants::default()
            ),
            None
        );
        let a = answer(
            &["permessage-deflate; server_max_window_bits=10, permessage-deflate; client_no_context_takeover"],
            Wants::default(),
        )
        .unwrap();
        assert_eq!(render(&a), "permessage-deflate; client_no_context_takeover");
        // 15 is what it uses anyway.
        assert!(
            answer(
                &["permessage-deflate; server_max_window_bits=15"],
                Wants::default()
            )
            .is_some()
        );
        // Across two header lines too.
        assert!(answer(&["foo", "permessage-deflate"], Wants::default()).is_some());
    }

    #[test]
    fn invalid_offers_are_declined() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=1x",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; mystery",
        ] {
            assert_eq!(answer(&[bad], Wants::default()), None, "{bad}");
        }
        // Quoted values are allowed by the header grammar.
        assert!(
            answer(
                &["permessage-deflate; client_max_window_bits=\"12\""],
                Wants::default()
            )
            .is_some()
        );
    }

    #[test]
    fn the_clients_own_no_context_takeover_requests_are_kept() {
        let a = answer(
            &["permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
            Wants::default(),
        )
        .unwrap();
        assert!(a.server_no_context_takeover && a.client_no_context_takeover);
    }

    #[test]
    fn clients_offer_no_window_limit_they_could_not_honour() {
        assert_eq!(render(&offer(Wants::default())), "permessage-deflate");
        let o = offer(Wants {
            server_no_context_takeover: true,
            client_no_context_takeover: false,
        });
        assert_eq!(render(&o), "permessage-deflate; server_no_context_takeover");
    }

    #[test]
    fn only_so_many_sockets_keep_context() {
        assert!(keeps_context(0, 16));
        assert!(keeps_context(15, 16));
        assert!(!keeps_context(16, 16));
        assert!(!keeps_context(0, 0));
    }

    #[test]
    fn a_declined_offer_goes_on_uncompressed() {
        assert_eq!(accept_answer(&[], &offer(Wants::default())), Ok(None));
    }

    #[test]
    fn answers_the_client_may_use() {
        let o = offer(Wants::default());
        let a = accept_answer(&["permessage-deflate"], &o).unwrap().unwrap();
        assert_eq!(a, Params::default());
        // The server may limit its own window and impose no context takeover on both sides.
        let a = accept_answer(
            &["permessage-deflate; server_max_window_bits=10; server_no_context_takeover; client_no_context_takeover"],
            &o,
        )
        .unwrap()
        .unwrap();
        assert!(a.server_no_context_takeover && a.client_no_context_takeover);
        assert_eq!(a.server_max_window_bits, Some(10));
    }

    #[test]
    fn answers_the_client_must_fail_on() {
        let o = offer(Wants::default());
        for bad in [
            "x-other",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; client_max_window_bits=10",
            "permessage-deflate; what",
        ] {
            assert!(accept_answer(&[bad], &o).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_server_that_keeps_its_context_anyway_is_read_with_context() {
        let asked = offer(Wants {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
        });
        let a = accept_answer(&["permessage-deflate"], &asked)
            .unwrap()
            .unwrap();
        assert!(!a.server_no_context_takeover);
        // What this client asked for itself holds whatever the answer says.
        assert!(a.client_no_context_takeover);
        let a = accept_answer(&["permessage-deflate; server_no_context_takeover"], &asked)
            .unwrap()
            .unwrap();
        assert!(a.server_no_context_takeover);
    }
}
