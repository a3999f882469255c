//! The permessage-deflate negotiation (RFC 7692 §5, §7.1): a client's offers in, the chosen
//! parameters and the `Sec-WebSocket-Extensions` answer out.
//!
//! Owns: the validity of one offer (§7: "A server MUST decline an extension negotiation offer for
//! this extension if any of the following conditions are met: The negotiation offer contains an
//! extension parameter not defined for use in an offer. The negotiation offer contains an
//! extension parameter with an invalid value. The negotiation offer contains multiple extension
//! parameters with the same name. The server doesn't support the offered configuration."), the
//! choice among several offers (the first acceptable one in the client's order, §5.1), and the
//! response parameters the server adds by its own [`ServerPolicy`].
//!
//! Never fails a handshake: an offer it declines is skipped, and with no acceptable offer the
//! connection simply runs without the extension. Never looks at other extensions' offers.

use std::fmt;

use crate::handshake::ExtensionOffer;

use super::{MAX_WINDOW_BITS, MIN_WINDOW_BITS};

/// The extension token (§7: "The registered extension name for this extension is
/// "permessage-deflate"").
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// What the server asks for on top of what a client offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerPolicy {
    /// Always answer `server_no_context_takeover` (§7.1.1.1: the server "MAY include" it even if
    /// not offered). Set in `shared` mode: every compressed message is then a self-contained
    /// stream, so one compressed frame is valid for every recipient.
    pub server_no_context_takeover: bool,
    /// Always answer `client_no_context_takeover` (§7.1.1.2: the server "MAY include" it). Then
    /// the inflater keeps nothing between messages and can be dropped while the connection is
    /// idle.
    pub client_no_context_takeover: bool,
    /// The LZ77 window our compressor uses when the client sets no smaller limit, 9..=15 (zlib's
    /// raw deflate cannot do 8). Below 15 it is announced with `server_max_window_bits`.
    pub server_max_window_bits: u8,
    /// The largest window we let the client use when its offer allows us to limit it
    /// (`client_max_window_bits` present), 8..=15. Bounds our inflate window memory.
    pub client_max_window_bits: u8,
}

impl Default for ServerPolicy {
    fn default() -> Self {
        ServerPolicy {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
        }
    }
}

/// The parameters in force on a connection that negotiated permessage-deflate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// We must start every message with a fresh compression context.
    pub server_no_context_takeover: bool,
    /// The client starts every message with a fresh context: our inflater may be reset (or
    /// dropped) between messages.
    pub client_no_context_takeover: bool,
    /// The largest window our compressor may use (8..=15). Below
    /// [`super::MIN_DEFLATE_WINDOW_BITS`] we send uncompressed messages.
    pub server_max_window_bits: u8,
    /// The largest window the client compresses with (8..=15): our inflate window.
    pub client_max_window_bits: u8,
}

/// An accepted offer: the parameters and the exact `Sec-WebSocket-Extensions` value to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// What both ends now follow.
    pub params: Negotiated,
    /// The response header value, e.g. `permessage-deflate; server_no_context_takeover`.
    pub response: String,
}

/// Why one `permessage-deflate` offer was declined (each is §7's "MUST decline").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OfferError {
    /// "an extension parameter not defined for use in an offer".
    UnknownParameter(String),
    /// "multiple extension parameters with the same name".
    DuplicateParameter(&'static str),
    /// "an extension parameter with an invalid value".
    InvalidValue(&'static str),
}

impl fmt::Display for OfferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfferError::UnknownParameter(p) => write!(f, "unknown parameter {p:?}"),
            OfferError::DuplicateParameter(p) => write!(f, "parameter {p} given twice"),
            OfferError::InvalidValue(p) => write!(f, "invalid value for {p}"),
        }
    }
}

impl std::error::Error for OfferError {}

/// One valid offer, as the client wrote it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// `server_no_context_takeover` was present.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover` was present.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits=N`.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits` was present (`Some`), with its value if it had one.
    pub client_max_window_bits: Option<Option<u8>>,
}

/// Reads the parameters of one `permessage-deflate` offer.
pub fn parse_offer(offer: &ExtensionOffer) -> Result<Offer, OfferError> {
    const SNCT: &str = "server_no_context_takeover";
    const CNCT: &str = "client_no_context_takeover";
    const SMWB: &str = "server_max_window_bits";
    const CMWB: &str = "client_max_window_bits";
    let mut out = Offer::default();
    let mut seen = [false; 4];
    for (name, value) in &offer.params {
        let (slot, name) = match name.to_ascii_lowercase().as_str() {
            SNCT => (0, SNCT),
            CNCT => (1, CNCT),
            SMWB => (2, SMWB),
            CMWB => (3, CMWB),
            _ => return Err(OfferError::UnknownParameter(name.clone())),
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err(OfferError::DuplicateParameter(name));
        }
        let value = value.as_deref();
        match slot {
            // §7.1.1.1/§7.1.1.2: "This parameter has no value."
            0 | 1 if value.is_some() => return Err(OfferError::InvalidValue(name)),
            0 => out.server_no_context_takeover = true,
            1 => out.client_no_context_takeover = true,
            // §7.1.2.1: a server_max_window_bits offer always has a value.
            2 => {
                let bits = value
                    .and_then(window_bits)
                    .ok_or(OfferError::InvalidValue(name))?;
                out.server_max_window_bits = Some(bits);
            }
            _ => {
                // §7.1.2.2: "This parameter has no value or a decimal integer value".
                let bits = match value {
                    None => None,
                    Some(v) => Some(window_bits(v).ok_or(OfferError::InvalidValue(name))?),
                };
                out.client_max_window_bits = Some(bits);
            }
        }
    }
    Ok(out)
}

/// §7.1.2.1: "a decimal integer value without leading zeroes between 8 to 15, inclusive".
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || value.len() > 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (MIN_WINDOW_BITS..=MAX_WINDOW_BITS)
        .contains(&bits)
        .then_some(bits)
}

impl Offer {
    /// The parameters and response for accepting this offer under `policy`.
    pub fn accept(&self, policy: &ServerPolicy) -> Accepted {
        let server_no_context_takeover =
            self.server_no_context_takeover || policy.server_no_context_takeover;
        let client_no_context_takeover =
            self.client_no_context_takeover || policy.client_no_context_takeover;
        // §7.1.2.1: accepted "by including the server_max_window_bits extension parameter in the
        // extension negotiation response ... with the same or smaller value as the offer"; and
        // the server "MAY include" it when not offered, to use a smaller window.
        let (server_bits, say_server_bits) = match self.server_max_window_bits {
            Some(offered) => (offered.min(policy.server_max_window_bits), true),
            None => (
                policy.server_max_window_bits,
                policy.server_max_window_bits < MAX_WINDOW_BITS,
            ),
        };
        // §7.1.2.2: "If a received extension negotiation offer doesn't have the
        // client_max_window_bits extension parameter, the corresponding extension negotiation
        // response to the offer MUST NOT include the client_max_window_bits extension
        // parameter." When it has one, we may answer a value "equal to or smaller than the
        // received value".
        let (client_bits, say_client_bits) = match self.client_max_window_bits {
            None => (MAX_WINDOW_BITS, false),
            Some(offered) => {
                let bits = offered
                    .unwrap_or(MAX_WINDOW_BITS)
                    .min(policy.client_max_window_bits);
                (bits, bits < MAX_WINDOW_BITS)
            }
        };
        let mut response = String::from(EXTENSION_NAME);
        if server_no_context_takeover {
            response.push_str("; server_no_context_takeover");
        }
        if client_no_context_takeover {
            response.push_str("; client_no_context_takeover");
        }
        if say_server_bits {
            response.push_str(&format!("; server_max_window_bits={server_bits}"));
        }
        if say_client_bits {
            response.push_str(&format!("; client_max_window_bits={client_bits}"));
        }
        Accepted {
            params: Negotiated {
                server_no_context_takeover,
                client_no_context_takeover,
                server_max_window_bits: server_bits,
                client_max_window_bits: client_bits,
            },
            response,
        }
    }
}

/// Picks the first acceptable `permessage-deflate` offer in the client's order (§5.1: the client
/// lists offers by preference; the server accepts at most one for this extension). `None`: no
/// offer, or every offer was declined; the connection runs without compression.
pub fn negotiate(offers: &[ExtensionOffer], policy: &ServerPolicy) -> Option<Accepted> {
    offers
        .iter()
        .filter(|o| o.name.eq_ignore_ascii_case(EXTENSION_NAME))
        .find_map(|o| parse_offer(o).ok())
        .map(|offer| offer.accept(policy))
}

/// [`negotiate`] on a raw `Sec-WebSocket-Extensions` value. `None` also when the value is outside
/// the §9.1 grammar (the handshake refuses such a request with 400 before this is reached).
pub fn negotiate_header(value: &[u8], policy: &ServerPolicy) -> Option<Accepted> {
    let mut offers = Vec::new();
    crate::handshake::upgrade::parse_extensions(value, &mut offers).ok()?;
    negotiate(&offers, policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::upgrade::parse_extensions;

    fn offers(header: &str) -> Vec<ExtensionOffer> {
        let mut out = Vec::new();
        parse_extensions(header.as_bytes(), &mut out).expect("valid header");
        out
    }

    fn answer(header: &str, policy: &ServerPolicy) -> Option<String> {
        negotiate(&offers(header), policy).map(|a| a.response)
    }

    fn default_answer(header: &str) -> Option<String> {
        answer(header, &ServerPolicy::default())
    }

    #[test]
    fn the_plain_offer_is_accepted_with_full_windows_and_context_takeover() {
        // §7.1.3 "Examples": `permessage-deflate` accepted as `permessage-deflate`.
        let a = negotiate(&offers("permessage-deflate"), &ServerPolicy::default()).unwrap();
        assert_eq!(a.response, "permessage-deflate");
        assert_eq!(
            a.params,
            Negotiated {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
            }
        );
    }

    #[test]
    fn the_browser_offer_is_accepted_without_limiting_the_client() {
        assert_eq!(
            default_answer("permessage-deflate; client_max_window_bits"),
            Some("permessage-deflate".into())
        );
    }

    #[test]
    fn rfc_example_client_max_window_bits_answered_with_a_smaller_value() {
        // §7.1.3: offer `permessage-deflate; client_max_window_bits`, a server limiting the
        // client's window answers `permessage-deflate; client_max_window_bits=10`.
        let policy = ServerPolicy {
            client_max_window_bits: 10,
            ..ServerPolicy::default()
        };
        let a = negotiate(
            &offers("permessage-deflate; client_max_window_bits"),
            &policy,
        )
        .unwrap();
        assert_eq!(a.response, "permessage-deflate; client_max_window_bits=10");
        assert_eq!(a.params.client_max_window_bits, 10);
    }

    #[test]
    fn client_max_window_bits_is_never_answered_when_not_offered() {
        let policy = ServerPolicy {
            client_max_window_bits: 9,
            ..ServerPolicy::default()
        };
        let a = negotiate(&offers("permessage-deflate"), &policy).unwrap();
        assert_eq!(a.response, "permessage-deflate");
        assert_eq!(a.params.client_max_window_bits, 15);
    }

    #[test]
    fn rfc_example_two_offers_the_first_declined_the_second_accepted() {
        // §7.1.3: "permessage-deflate; client_max_window_bits; server_max_window_bits=10,
        // permessage-deflate; client_max_window_bits": a server that declines the first (here:
        // because its first parameter is malformed) accepts the second.
        assert_eq!(
            default_answer(
                "permessage-deflate; server_max_window_bits=7, \
                 permessage-deflate; client_max_window_bits"
            ),
            Some("permessage-deflate".into())
        );
        // And one that accepts the first answers with its window.
        assert_eq!(
            default_answer(
                "permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
                 permessage-deflate; client_max_window_bits"
            ),
            Some("permessage-deflate; server_max_window_bits=10".into())
        );
    }

    #[test]
    fn server_max_window_bits_is_answered_with_the_same_or_a_smaller_value() {
        let policy = ServerPolicy {
            server_max_window_bits: 12,
            ..ServerPolicy::default()
        };
        assert_eq!(
            answer("permessage-deflate; server_max_window_bits=10", &policy),
            Some("permessage-deflate; server_max_window_bits=10".into())
        );
        assert_eq!(
            answer("permessage-deflate; server_max_window_bits=15", &policy),
            Some("permessage-deflate; server_max_window_bits=12".into())
        );
        // Not offered: the server may still announce its smaller window.
        assert_eq!(
            answer("permessage-deflate", &policy),
            Some("permessage-deflate; server_max_window_bits=12".into())
        );
        // 8 is accepted (we then send uncompressed messages, which the RFC allows).
        let a = negotiate(
            &offers("permessage-deflate; server_max_window_bits=8"),
            &policy,
        )
        .unwrap();
        assert_eq!(a.params.server_max_window_bits, 8);
    }

    #[test]
    fn no_context_takeover_is_echoed_when_offered_and_added_by_policy() {
        assert_eq!(
            default_answer(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            ),
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover".into()
            )
        );
        let shared = ServerPolicy {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..ServerPolicy::default()
        };
        let a = negotiate(&offers("permessage-deflate"), &shared).unwrap();
        assert_eq!(
            a.response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert!(a.params.server_no_context_takeover && a.params.client_no_context_takeover);
    }

    #[test]
    fn offers_the_rfc_says_to_decline_are_declined_and_the_next_one_is_tried() {
        for bad in [
            // unknown parameter
            "permessage-deflate; x_bits=3",
            // duplicate parameter
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            // a value where none is allowed
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"x\"",
            // server_max_window_bits without a value, out of range, or not canonical
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; client_max_window_bits=100",
        ] {
            assert_eq!(default_answer(bad), None, "{bad}");
            assert_eq!(
                default_answer(&format!("{bad}, permessage-deflate")),
                Some("permessage-deflate".into()),
                "{bad} then a good offer"
            );
        }
    }

    #[test]
    fn each_declined_offer_names_its_reason() {
        let one = |h: &str| parse_offer(&offers(h)[0]);
        assert_eq!(
            one("permessage-deflate; foo"),
            Err(OfferError::UnknownParameter("foo".into()))
        );
        assert_eq!(
            one("permessage-deflate; server_max_window_bits=9; Server_Max_Window_Bits=9"),
            Err(OfferError::DuplicateParameter("server_max_window_bits"))
        );
        assert_eq!(
            one("permessage-deflate; client_max_window_bits=\"16\""),
            Err(OfferError::InvalidValue("client_max_window_bits"))
        );
    }

    #[test]
    fn quoted_values_count_as_their_token() {
        assert_eq!(
            default_answer("permessage-deflate; server_max_window_bits=\"10\""),
            Some("permessage-deflate; server_max_window_bits=10".into())
        );
    }

    #[test]
    fn other_extensions_are_ignored() {
        assert_eq!(default_answer("x-webkit-deflate-frame"), None);
        assert_eq!(
            default_answer("x-foo; a=1, permessage-deflate"),
            Some("permessage-deflate".into())
        );
    }
}
