//! The client's address, for login throttling, per-address limits and the audit trail.
//!
//! It is the TCP peer, unless the peer is one of `auth.trusted_proxies`: then it is the
//! rightmost address of `X-Forwarded-For` that is not itself a trusted proxy (each proxy
//! appends the address it received the request from, so everything left of the last
//! untrusted hop was written by the client and proves nothing). A request straight from
//! a client cannot choose its address by sending the header.
use std::net::IpAddr;

use actix_web::{web, HttpRequest};
use ipnetwork::IpNetwork;

/// The configured `auth.trusted_proxies`, as app data of the HTTP server.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNetwork>);

/// Longest `X-Forwarded-For` read (bytes); beyond, the peer is used.
const FORWARDED_BYTES_MAX: usize = 1024;

/// The client address of a request under the configured trusted proxies.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let trusted = req
        .app_data::<web::Data<TrustedProxies>>()
        .map(|p| p.0.as_slice())
        .unwrap_or(&[]);
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("X-Forwarded-For")
        .filter_map(|v| v.to_str().ok())
        .collect();
    resolve(req.peer_addr().map(|a| a.ip()), &forwarded, trusted)
}

/// The rule itself (pure): `peer`, or the first untrusted hop of the forwarded chain.
pub fn resolve(peer: Option<IpAddr>, forwarded: &[&str], trusted: &[IpNetwork]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) || forwarded.iter().map(|h| h.len()).sum::<usize>() > FORWARDED_BYTES_MAX {
        return Some(peer);
    }
    let hops: Vec<&str> = forwarded
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(ip) => continue,
            Ok(ip) => return Some(ip),
            // Garbage in the chain: nothing left of it can be believed.
            Err(_) => return Some(peer),
        }
    }
    Some(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNetwork> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let got = resolve(
            Some(ip("203.0.113.9")),
            &["1.2.3.4"],
            &nets(&["10.0.0.0/8"]),
        );
        assert_eq!(got, Some(ip("203.0.113.9")));
    }

    #[test]
    fn behind_a_trusted_proxy_the_last_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        let got = resolve(
            Some(ip("127.0.0.1")),
            &["6.6.6.6, 198.51.100.7", "10.1.2.3"],
            &trusted,
        );
        assert_eq!(
            got,
            Some(ip("198.51.100.7")),
            "the forged 6.6.6.6 is ignored"
        );
    }

    #[test]
    fn a_trusted_peer_without_the_header_or_with_garbage_is_itself() {
        let trusted = nets(&["127.0.0.1/32"]);
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), &[], &trusted),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), &["not-an-ip"], &trusted),
            Some(ip("127.0.0.1"))
        );
    }
}
