//! The Origin policy and the address rules, as a specification: which browser origins may open a
//! WebSocket, which peers are refused at accept, and which address is the client behind proxies.

use std::net::IpAddr;

use ringcast::proto::handshake::{HandshakeLimits, Request};
use ringcast::security::ip::{client_ip, Cidr, CidrError, IpError, IpRules};
use ringcast::security::origin::{OriginError, OriginPattern, OriginPolicy};
use ringcast::security::{Now, Policy, Refusal, SecurityConfig};

const NOW: Now = Now {
    tick_ms: 1_000,
    unix_ms: 1_700_000_000_000,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

fn cidrs(list: &[&str]) -> Vec<Cidr> {
    list.iter().map(|s| cidr(s)).collect()
}

fn allowed(patterns: &[&str]) -> OriginPolicy {
    OriginPolicy {
        allowed: patterns.iter().map(|p| p.parse().unwrap()).collect(),
        require_origin: false,
    }
}

fn request(headers: &[(&str, &str)]) -> Request {
    let mut head = String::from("GET /ws HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    Request::parse_head(head.as_bytes(), &HandshakeLimits::default()).expect("valid head")
}

// --- Origin ---------------------------------------------------------------------------------

#[test]
fn by_default_a_browser_origin_must_match_the_host() {
    let p = OriginPolicy::default();
    assert_eq!(
        p.check(Some("https://chat.example.com"), Some("chat.example.com")),
        Ok(())
    );
    assert_eq!(
        p.check(Some("HTTPS://Chat.Example.COM"), Some("chat.example.com")),
        Ok(())
    );
    assert_eq!(
        p.check(Some("http://localhost:8080"), Some("localhost:8080")),
        Ok(())
    );
    // A default port on either side equals no port.
    assert_eq!(p.check(Some("https://a.com:443"), Some("a.com")), Ok(()));
    assert_eq!(p.check(Some("https://a.com"), Some("a.com:443")), Ok(()));
    assert_eq!(
        p.check(Some("http://[::1]:9000"), Some("[::1]:9000")),
        Ok(())
    );
    assert_eq!(
        p.check(Some("https://evil.com"), Some("chat.example.com")),
        Err(OriginError::CrossOrigin)
    );
    assert_eq!(
        p.check(Some("http://localhost:3000"), Some("localhost:8080")),
        Err(OriginError::CrossOrigin)
    );
    assert_eq!(
        p.check(Some("https://a.com"), None),
        Err(OriginError::CrossOrigin)
    );
}

#[test]
fn a_request_without_origin_is_allowed_unless_origin_is_required() {
    assert_eq!(OriginPolicy::default().check(None, Some("a.com")), Ok(()));
    let strict = OriginPolicy {
        require_origin: true,
        ..OriginPolicy::default()
    };
    assert_eq!(strict.check(None, Some("a.com")), Err(OriginError::Missing));
}

#[test]
fn a_null_or_garbled_origin_is_refused_unless_everything_is_allowed() {
    let p = OriginPolicy::default();
    for bad in [
        "null",
        "chat.example.com",
        "https://",
        "https://a.com/path",
        "https://u@a.com",
        "https://a.com:0",
    ] {
        assert_eq!(
            p.check(Some(bad), Some("a.com")),
            Err(OriginError::Malformed),
            "{bad}"
        );
    }
    assert_eq!(allowed(&["*"]).check(Some("null"), Some("a.com")), Ok(()));
}

#[test]
fn allowed_origins_match_exactly_including_scheme_and_port() {
    let p = allowed(&["https://app.example.com", "http://localhost:3000"]);
    assert_eq!(
        p.check(Some("https://app.example.com"), Some("ws.example.com")),
        Ok(())
    );
    assert_eq!(p.check(Some("https://app.example.com:443"), None), Ok(()));
    assert_eq!(p.check(Some("http://localhost:3000"), None), Ok(()));
    for refused in [
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://app.example.com.evil.com",
        "https://evilapp.example.com",
        "http://localhost:3001",
    ] {
        assert_eq!(
            p.check(Some(refused), None),
            Err(OriginError::NotAllowed),
            "{refused}"
        );
    }
    // With a list, Host no longer matters: same-host pages must be listed too.
    assert_eq!(
        p.check(Some("https://ws.example.com"), Some("ws.example.com")),
        Err(OriginError::NotAllowed)
    );
}

#[test]
fn a_wildcard_origin_matches_subdomains_only() {
    let p = allowed(&["https://*.example.com"]);
    assert_eq!(p.check(Some("https://a.example.com"), None), Ok(()));
    assert_eq!(p.check(Some("https://a.b.EXAMPLE.com"), None), Ok(()));
    for refused in [
        "https://example.com",
        "https://badexample.com",
        "https://example.com.evil.com",
        "http://a.example.com",
        "https://a.example.com:8443",
    ] {
        assert_eq!(
            p.check(Some(refused), None),
            Err(OriginError::NotAllowed),
            "{refused}"
        );
    }
    let any_scheme = allowed(&["*.example.com"]);
    assert_eq!(any_scheme.check(Some("http://a.example.com"), None), Ok(()));
    assert_eq!(
        any_scheme.check(Some("https://a.example.com"), None),
        Ok(())
    );
    assert_eq!(
        any_scheme.check(Some("ftp://a.example.com"), None),
        Err(OriginError::NotAllowed)
    );
}

#[test]
fn origin_patterns_print_canonically_and_bad_ones_are_refused() {
    for (text, canonical) in [
        ("HTTPS://App.Example.com:443", "https://app.example.com"),
        ("https://*.example.com:8443", "https://*.example.com:8443"),
        ("*.Example.com", "*.example.com"),
        ("*", "*"),
    ] {
        let p: OriginPattern = text.parse().unwrap();
        assert_eq!(p.to_string(), canonical);
        assert_eq!(canonical.parse::<OriginPattern>().unwrap(), p);
    }
    for bad in [
        "",
        "https://a.com/",
        "ftp://a.com",
        "https://a.*.com",
        "https://*",
        "*.",
        "a.com:80",
        "https://a.com:99999",
    ] {
        assert!(bad.parse::<OriginPattern>().is_err(), "{bad}");
    }
}

#[test]
fn a_cross_origin_browser_request_is_refused_by_the_policy_with_403() {
    let policy = Policy::new(&SecurityConfig::default(), None).unwrap();
    let req = request(&[
        ("Host", "chat.example.com"),
        ("Origin", "https://evil.example.net"),
    ]);
    let err = policy
        .admit_request(&req, ip("198.51.100.1"), NOW)
        .unwrap_err();
    assert_eq!(err, Refusal::Origin(OriginError::CrossOrigin));
    assert_eq!((err.status(), err.label()), (403, "origin"));
    let mut out = Vec::new();
    err.render(&mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{text}");
    assert!(
        text.ends_with("cross-origin request refused: Origin does not match Host\n"),
        "{text}"
    );
}

// --- CIDR -----------------------------------------------------------------------------------

#[test]
fn ipv4_blocks_match_their_range_and_nothing_else() {
    let c = cidr("10.0.0.0/8");
    assert!(c.contains(ip("10.0.0.0")) && c.contains(ip("10.255.255.255")));
    assert!(!c.contains(ip("11.0.0.0")) && !c.contains(ip("9.255.255.255")));
    assert!(cidr("192.168.1.7").contains(ip("192.168.1.7")));
    assert!(!cidr("192.168.1.7").contains(ip("192.168.1.8")));
    assert!(cidr("0.0.0.0/0").contains(ip("255.1.2.3")));
    // An IPv4 /0 is "every IPv4 address", not every address.
    assert!(!cidr("0.0.0.0/0").contains(ip("2001:db8::1")));
}

#[test]
fn ipv6_blocks_match_their_range() {
    let c = cidr("2001:db8::/32");
    assert!(c.contains(ip("2001:db8::1")) && c.contains(ip("2001:db8:ffff::")));
    assert!(!c.contains(ip("2001:db9::")));
    assert!(cidr("::/0").contains(ip("2001:db8::1")));
    assert!(cidr("::1").contains(ip("::1")) && !cidr("::1").contains(ip("::2")));
}

#[test]
fn an_ipv4_mapped_ipv6_peer_matches_ipv4_rules() {
    assert!(cidr("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
    assert!(!cidr("10.0.0.0/8").contains(ip("::ffff:11.1.2.3")));
    let rules = IpRules {
        allow: vec![],
        deny: cidrs(&["203.0.113.0/24"]),
    };
    assert_eq!(rules.check(ip("::ffff:203.0.113.9")), Err(IpError::Denied));
}

#[test]
fn cidr_text_round_trips_and_typos_are_refused() {
    for text in [
        "10.0.0.0/8",
        "192.168.1.7/32",
        "0.0.0.0/0",
        "2001:db8::/32",
        "::1/128",
        "::/0",
    ] {
        assert_eq!(cidr(text).to_string(), text);
    }
    assert_eq!(cidr("10.1.2.3").to_string(), "10.1.2.3/32");
    assert_eq!(
        "10.0.0.1/8".parse::<Cidr>(),
        Err(CidrError::HostBits(cidr("10.0.0.0/8")))
    );
    assert_eq!(
        "1.2.3.4/33".parse::<Cidr>(),
        Err(CidrError::Prefix { max: 32 })
    );
    assert_eq!(
        "::/129".parse::<Cidr>(),
        Err(CidrError::Prefix { max: 128 })
    );
    assert_eq!(
        "1.2.3.4/+8".parse::<Cidr>(),
        Err(CidrError::Prefix { max: 32 })
    );
    assert_eq!("example.com/8".parse::<Cidr>(), Err(CidrError::Address));
}

#[test]
fn deny_wins_over_allow_and_an_allow_list_excludes_the_rest() {
    let rules = IpRules {
        allow: cidrs(&["10.0.0.0/8", "2001:db8::/32"]),
        deny: cidrs(&["10.6.0.0/16"]),
    };
    assert_eq!(rules.check(ip("10.1.1.1")), Ok(()));
    assert_eq!(rules.check(ip("2001:db8::5")), Ok(()));
    assert_eq!(rules.check(ip("10.6.1.1")), Err(IpError::Denied));
    assert_eq!(rules.check(ip("192.0.2.1")), Err(IpError::NotAllowed));
    assert_eq!(IpRules::default().check(ip("192.0.2.1")), Ok(()));
}

#[test]
fn a_denied_peer_is_refused_at_accept_and_others_are_still_admitted() {
    let config = SecurityConfig {
        deny_cidr: cidrs(&["203.0.113.0/24"]),
        ..SecurityConfig::default()
    };
    let policy = Policy::new(&config, None).unwrap();
    let err = policy.admit_peer(ip("203.0.113.50"), 0).unwrap_err();
    assert_eq!(err, Refusal::Address(IpError::Denied));
    assert_eq!((err.status(), err.label()), (403, "ip_denied"));
    assert!(policy.admit_peer(ip("198.51.100.1"), 0).is_ok());
}

// --- X-Forwarded-For ------------------------------------------------------------------------

#[test]
fn forwarded_for_is_ignored_from_an_untrusted_peer() {
    let trusted = cidrs(&["10.0.0.0/8"]);
    assert_eq!(
        client_ip(ip("198.51.100.9"), Some("1.2.3.4"), &trusted),
        ip("198.51.100.9")
    );
    assert_eq!(
        client_ip(ip("198.51.100.9"), Some("1.2.3.4"), &[]),
        ip("198.51.100.9")
    );
}

#[test]
fn behind_trusted_proxies_the_client_is_the_rightmost_untrusted_address() {
    let trusted = cidrs(&["10.0.0.0/8", "fd00::/8"]);
    let proxy = ip("10.0.0.2");
    // One proxy: it appended the address it received from.
    assert_eq!(
        client_ip(proxy, Some("198.51.100.9"), &trusted),
        ip("198.51.100.9")
    );
    // A spoofed left-most entry is skipped: only what the trusted hops wrote counts.
    assert_eq!(
        client_ip(proxy, Some("6.6.6.6, 198.51.100.9, 10.0.0.1"), &trusted),
        ip("198.51.100.9")
    );
    assert_eq!(
        client_ip(proxy, Some("[2001:db8::7]:443, fd00::1"), &trusted),
        ip("2001:db8::7")
    );
    assert_eq!(
        client_ip(proxy, Some("198.51.100.9:5555"), &trusted),
        ip("198.51.100.9")
    );
    // All trusted: the left-most hop is the best we know.
    assert_eq!(
        client_ip(proxy, Some("10.9.9.9, 10.0.0.1"), &trusted),
        ip("10.9.9.9")
    );
    // No header, or garbage before any untrusted address: the last trusted hop, never a value
    // the client chose.
    assert_eq!(client_ip(proxy, None, &trusted), proxy);
    assert_eq!(client_ip(proxy, Some("not-an-ip"), &trusted), proxy);
    assert_eq!(
        client_ip(proxy, Some("1.2.3.4, junk, 10.0.0.1"), &trusted),
        ip("10.0.0.1")
    );
}

#[test]
fn the_policy_applies_address_rules_and_per_ip_caps_to_the_forwarded_client() {
    let config = SecurityConfig {
        trusted_proxies: cidrs(&["10.0.0.0/8"]),
        deny_cidr: cidrs(&["203.0.113.0/24"]),
        max_connections_per_ip: 1,
        ..SecurityConfig::default()
    };
    let policy = Policy::new(&config, None).unwrap();
    let proxy = ip("10.0.0.2");
    // The proxy itself is never counted: all its clients share its address.
    let p1 = policy.admit_peer(proxy, 0).unwrap();
    let p2 = policy.admit_peer(proxy, 0).unwrap();
    assert!(!p1.is_counted() && !p2.is_counted());

    let denied = request(&[("X-Forwarded-For", "203.0.113.5")]);
    assert_eq!(
        policy.admit_request(&denied, proxy, NOW).unwrap_err(),
        Refusal::ForwardedAddress(IpError::Denied)
    );

    let client = request(&[("X-Forwarded-For", "198.51.100.9")]);
    let first = policy.admit_request(&client, proxy, NOW).unwrap();
    assert_eq!(first.client_ip, ip("198.51.100.9"));
    assert_eq!(policy.connections_from(ip("198.51.100.9")), 1);
    assert_eq!(
        policy.admit_request(&client, proxy, NOW).unwrap_err(),
        Refusal::TooManyConnections { limit: 1 }
    );
    drop(first);
    assert_eq!(policy.connections_from(ip("198.51.100.9")), 0);
    assert!(policy.admit_request(&client, proxy, NOW).is_ok());
}
