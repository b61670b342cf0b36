//! Who is on the other end: the client address that per-IP rate limits
//! count, from the TCP peer, or from `X-Forwarded-For` when the peer is a
//! proxy this api was told to trust (`TRUSTED_PROXIES`, none by default:
//! an untrusted client could otherwise write any address it likes there).
//!
//! With trusted proxies, `X-Forwarded-For` is read from the right (each
//! proxy appends the address it received from), skipping trusted proxies:
//! the first address that is not one is the client. A header that is
//! missing, malformed, or lists only trusted proxies leaves the peer
//! itself, or the leftmost address, as the client.
//!
//! An IPv6 client counts as its /64 (one subscriber's network gets a /64
//! or more, and can change the lower half at will); an IPv4-mapped IPv6
//! address counts as its IPv4 address.
use std::net::{IpAddr, Ipv6Addr};

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The client of one request, as rate limits count it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The address as a rate-limit subject: IPv6 cut to its /64.
    #[must_use]
    pub fn subject(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let [a, b, c, d, ..] = v6.segments();
                    format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
                }
            },
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`:
/// addresses or CIDR ranges, comma-separated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `10.0.0.1, 192.168.0.0/16, ::1`.
    ///
    /// # Errors
    /// A message naming the entry that is neither an address nor a range.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is neither an IP address nor a CIDR range"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of `req` (see the module docs); `None` only when actix
    /// knows no peer (a request built in a test).
    #[must_use]
    pub fn client_of(&self, req: &HttpRequest) -> Option<ClientIp> {
        let peer = req.peer_addr()?.ip();
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        Some(ClientIp(self.client(peer, &forwarded)))
    }

    /// The client, given the peer and the `X-Forwarded-For` values joined.
    fn client(&self, peer: IpAddr, forwarded: &str) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded.rsplit(',').map(str::trim) {
            let Ok(ip) = hop.parse::<IpAddr>() else {
                // A malformed entry: nothing left of it can be believed.
                return client;
            };
            client = ip;
            if !self.trusts(ip) {
                return ip;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("203.0.113.9"), "198.51.100.1"), ip("203.0.113.9"));
        assert_eq!(none.client(ip("127.0.0.1"), "198.51.100.1"), ip("127.0.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        let proxies = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").expect("parses");
        let peer = ip("127.0.0.1");
        // A client that forged its own header: nginx appended the real one.
        assert_eq!(proxies.client(peer, "1.2.3.4, 203.0.113.9"), ip("203.0.113.9"));
        assert_eq!(
            proxies.client(peer, "1.2.3.4, 203.0.113.9, 10.1.2.3"),
            ip("203.0.113.9")
        );
        assert_eq!(proxies.client(peer, ""), peer, "no header: the proxy itself");
        assert_eq!(
            proxies.client(peer, "10.0.0.7"),
            ip("10.0.0.7"),
            "only proxies: the leftmost"
        );
        assert_eq!(proxies.client(peer, "1.2.3.4, junk, 10.1.2.3"), ip("10.1.2.3"));
        // A peer that is not a trusted proxy is the client.
        assert_eq!(proxies.client(ip("198.51.100.7"), "1.2.3.4"), ip("198.51.100.7"));
    }

    #[test]
    fn a_bad_entry_is_refused_with_its_name() {
        let error = TrustedProxies::parse("10.0.0.1, nginx").expect_err("refused");
        assert!(error.contains("\"nginx\""), "{error}");
        assert_eq!(
            TrustedProxies::parse(" ").expect("empty"),
            TrustedProxies::default()
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            ClientIp(ip("2001:db8:1:2:aaaa::1")).subject(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(ClientIp(ip("::ffff:203.0.113.9")).subject(), "203.0.113.9");
        assert_eq!(ClientIp(ip("203.0.113.9")).subject(), "203.0.113.9");
    }
}
