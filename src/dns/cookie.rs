//! DNS Cookies, server side (RFC 7873), with the interoperable server cookie of RFC 9018.
//!
//! A client cookie (8 bytes) is answered with the same client cookie and a server cookie of
//! 16 bytes: version 1, three reserved bytes, a 32-bit timestamp and an 8-byte SipHash-2-4 of
//! `client cookie | version | reserved | timestamp | client address` under a 16-byte secret.
//! Any server that knows the secret can check the cookie, so instances of a fleet that share
//! the secret accept each other's cookies.
//!
//! Secrets: the first configured secret makes new cookies; every configured secret is accepted.
//! Rotation (RFC 9018 §5): add the new secret second on every instance, then, after the old
//! cookies could have reached every instance (an hour at most), move it first, and after another
//! hour drop the old one. Without configured secrets a random one is drawn at start, which makes
//! cookies valid only on that instance until it restarts.

use std::net::IpAddr;

use siphasher::sip::SipHasher24;
use std::hash::Hasher;

/// A server cookie is accepted up to this long after its timestamp (RFC 9018 §4.3).
const MAX_AGE: u32 = 3600;
/// …and this far in the future (clock differences between instances).
const MAX_AHEAD: u32 = 300;

/// What a query's COOKIE option carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieIn {
    /// The client cookie: the option's first 8 bytes, echoed in the response.
    pub client: [u8; 8],
    /// A server cookie came with it, and it is ours and fresh.
    pub server_valid: bool,
    /// A server cookie came with it at all.
    pub server_sent: bool,
}

/// A COOKIE option that breaks RFC 7873 §4: FORMERR (§5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed COOKIE option of {0} bytes (8, or 16 to 40)")]
pub struct MalformedCookie(pub usize);

/// The server's secrets.
#[derive(Clone)]
pub struct Cookies {
    secrets: Vec<[u8; 16]>,
}

impl std::fmt::Debug for Cookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        write!(f, "Cookies({} secret(s))", self.secrets.len())
    }
}

impl Cookies {
    /// Cookies made with the first secret and checked against all of them; a random secret when
    /// the list is empty.
    pub fn new(mut secrets: Vec<[u8; 16]>) -> Self {
        if secrets.is_empty() {
            secrets.push(rand::random());
        }
        Self { secrets }
    }

    /// Reads a query's COOKIE option data and checks its server cookie for `client` at `now`
    /// (seconds since the Unix epoch, wrapping as RFC 9018 allows).
    pub fn check(
        &self,
        data: &[u8],
        client: IpAddr,
        now: u32,
    ) -> Result<CookieIn, MalformedCookie> {
        // RFC 7873 §4: a client cookie of 8 bytes, optionally a server cookie of 8 to 32.
        if data.len() != 8 && !(16..=40).contains(&data.len()) {
            return Err(MalformedCookie(data.len()));
        }
        let mut cc = [0u8; 8];
        cc.copy_from_slice(&data[..8]);
        let server = &data[8..];
        let server_valid = server.len() == 16 && self.valid(&cc, server, client, now);
        Ok(CookieIn {
            client: cc,
            server_valid,
            server_sent: !server.is_empty(),
        })
    }

    fn valid(&self, cc: &[u8; 8], sc: &[u8], client: IpAddr, now: u32) -> bool {
        // Version 1; the reserved bytes are hashed as sent but not checked (RFC 9018 §4.2).
        if sc[0] != 1 {
            return false;
        }
        let mut head = [0u8; 8];
        head.copy_from_slice(&sc[..8]);
        let ts = u32::from_be_bytes([sc[4], sc[5], sc[6], sc[7]]);
        // Serial-number arithmetic on 32 bits (RFC 1982), as RFC 9018 §4.3 does.
        let age = now.wrapping_sub(ts);
        let fresh = age <= MAX_AGE || ts.wrapping_sub(now) <= MAX_AHEAD;
        fresh
            && self
                .secrets
                .iter()
                .any(|s| hash(s, cc, &head, client) == sc[8..16])
    }

    /// The option data to answer with: the client cookie and a new server cookie.
    pub fn answer(&self, cc: &[u8; 8], client: IpAddr, now: u32) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(cc);
        let mut head = [1, 0, 0, 0, 0, 0, 0, 0];
        head[4..].copy_from_slice(&now.to_be_bytes());
        out[8..16].copy_from_slice(&head);
        out[16..].copy_from_slice(&hash(&self.secrets[0], cc, &head, client));
        out
    }
}

/// SipHash-2-4 over `client cookie | version | reserved | timestamp | client address`
/// (RFC 9018 §4.4), the 64-bit result in little-endian order as the reference code writes it.
fn hash(secret: &[u8; 16], cc: &[u8; 8], head: &[u8; 8], client: IpAddr) -> [u8; 8] {
    let mut h = SipHasher24::new_with_key(secret);
    h.write(cc);
    h.write(head);
    match crate::geo::canonical(client) {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => h.write(&a.octets()),
    }
    h.finish().to_le_bytes()
}

pub use crate::config::parse_secret;

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rfc9018_appendix_a_test_vector() {
        // RFC 9018 Appendix A.1: client 198.51.100.100, secret e5e973e5a6b2a43f48e7dc849e37bfcf,
        // client cookie 2464c4abcf10c957, timestamp 1559731985 → 010000005cf79f11 1f8130c3eee29480.
        let c = Cookies::new(vec![
            parse_secret("e5e973e5a6b2a43f48e7dc849e37bfcf").unwrap(),
        ]);
        let cc = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];
        let out = c.answer(&cc, ip("198.51.100.100"), 1_559_731_985);
        assert_eq!(
            out[8..],
            [
                0x01, 0x00, 0x00, 0x00, 0x5c, 0xf7, 0x9f, 0x11, 0x1f, 0x81, 0x30, 0xc3, 0xee, 0xe2,
                0x94, 0x80
            ]
        );
    }

    #[test]
    fn rfc9018_appendix_a4_ipv6_with_a_rolled_over_secret() {
        // RFC 9018 Appendix A.4: the client's cookie was made with the old secret; the server
        // now makes cookies with the new one and still accepts the old.
        let old = parse_secret("dd3bdf9344b678b185a6f5cb60fca715").unwrap();
        let new = parse_secret("445536bcd2513298075a5d379663c962").unwrap();
        let client = ip("2001:db8:220:1:59de:d0f4:8769:82b8");
        let sent = hex("22681ab97d52c298010000005cf7c57926556bd0934c72f8");
        let only_new = Cookies::new(vec![new]);
        assert!(
            !only_new
                .check(&sent, client, 1_559_741_961)
                .unwrap()
                .server_valid
        );
        let rotated = Cookies::new(vec![new, old]);
        let v = rotated.check(&sent, client, 1_559_741_961).unwrap();
        assert!(v.server_valid);
        assert_eq!(
            rotated.answer(&v.client, client, 1_559_741_961).to_vec(),
            hex("22681ab97d52c298010000005cf7c609a6bb79d16625507a")
        );
    }

    #[test]
    fn rfc9018_appendix_a3_reserved_bytes_are_hashed_not_checked() {
        let c = Cookies::new(vec![
            parse_secret("e5e973e5a6b2a43f48e7dc849e37bfcf").unwrap(),
        ]);
        let client = ip("203.0.113.203");
        let sent = hex("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5");
        // Valid while fresh (made at 1559727985), expired by the time of the vector's answer.
        assert!(
            c.check(&sent, client, 1_559_727_985 + 60)
                .unwrap()
                .server_valid
        );
        let v = c.check(&sent, client, 1_559_734_700).unwrap();
        assert!(!v.server_valid);
        assert_eq!(
            c.answer(&v.client, client, 1_559_734_700).to_vec(),
            hex("fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e")
        );
    }

    #[test]
    fn rfc9018_appendix_a2_renewed_cookie() {
        let c = Cookies::new(vec![
            parse_secret("e5e973e5a6b2a43f48e7dc849e37bfcf").unwrap(),
        ]);
        let client = ip("198.51.100.100");
        let sent = hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480");
        let v = c.check(&sent, client, 1_559_734_385).unwrap();
        assert!(v.server_valid);
        assert_eq!(
            c.answer(&v.client, client, 1_559_734_385).to_vec(),
            hex("2464c4abcf10c957010000005cf7a871d4a564a1442aca77")
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn own_cookies_are_valid_while_fresh_for_the_same_client_only() {
        let c = Cookies::new(vec![[7; 16]]);
        let now = 1_800_000_000;
        let out = c.answer(&CLIENT, ip("192.0.2.1"), now);
        let v = c.check(&out, ip("192.0.2.1"), now + 10).unwrap();
        assert!(v.server_valid && v.server_sent);
        assert_eq!(v.client, CLIENT);
        assert!(!c.check(&out, ip("192.0.2.2"), now).unwrap().server_valid);
        assert!(
            !c.check(&out, ip("192.0.2.1"), now + MAX_AGE + 1)
                .unwrap()
                .server_valid
        );
        assert!(
            c.check(&out, ip("192.0.2.1"), now - 100)
                .unwrap()
                .server_valid
        );
        assert!(
            !c.check(&out, ip("192.0.2.1"), now - MAX_AHEAD - 1)
                .unwrap()
                .server_valid
        );
        let mut bad = out;
        bad[23] ^= 1;
        assert!(!c.check(&bad, ip("192.0.2.1"), now).unwrap().server_valid);
    }

    #[test]
    fn every_configured_secret_is_accepted_the_first_makes_cookies() {
        let old = Cookies::new(vec![[1; 16]]);
        let rotated = Cookies::new(vec![[2; 16], [1; 16]]);
        let now = 1_800_000_000;
        let from_old = old.answer(&CLIENT, ip("192.0.2.1"), now);
        assert!(
            rotated
                .check(&from_old, ip("192.0.2.1"), now)
                .unwrap()
                .server_valid
        );
        let from_new = rotated.answer(&CLIENT, ip("192.0.2.1"), now);
        assert!(
            !old.check(&from_new, ip("192.0.2.1"), now)
                .unwrap()
                .server_valid
        );
    }

    #[test]
    fn lengths_outside_rfc7873_are_malformed() {
        let c = Cookies::new(vec![]);
        for len in [0, 1, 7, 9, 15, 41] {
            assert_eq!(
                c.check(&vec![0; len], ip("192.0.2.1"), 0),
                Err(MalformedCookie(len))
            );
        }
        let only_client = c.check(&CLIENT, ip("192.0.2.1"), 0).unwrap();
        assert!(!only_client.server_sent && !only_client.server_valid);
        // A server cookie of another server's format (not ours): sent, not valid.
        let other = c.check(&[0; 32], ip("192.0.2.1"), 0).unwrap();
        assert!(other.server_sent && !other.server_valid);
    }

    #[test]
    fn secrets_parse_from_hex() {
        assert_eq!(
            parse_secret("000102030405060708090a0b0c0d0e0f").unwrap()[15],
            15
        );
        assert!(parse_secret("00").is_none());
        assert!(parse_secret("zz0102030405060708090a0b0c0d0e0f").is_none());
    }
}
