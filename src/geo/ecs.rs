//! EDNS Client Subnet (RFC 7871) in queries: validation and the address to locate.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::opt::ClientSubnet;

/// A validated ECS option from a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ecs {
    /// The address with every bit past `source_prefix` zero.
    pub addr: IpAddr,
    /// SOURCE PREFIX-LENGTH: how many leading bits of `addr` the client sent (0 asks for no
    /// tailoring).
    pub source_prefix: u8,
}

/// Why an ECS option is malformed; each is a FORMERR (RFC 7871 §6, §7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EcsError {
    /// FAMILY is neither 1 (IPv4) nor 2 (IPv6).
    #[error("unknown address family {0}")]
    Family(u16),
    /// SOURCE PREFIX-LENGTH is over 32 (IPv4) or 128 (IPv6).
    #[error("source prefix {0} is longer than the family allows")]
    SourceTooLong(u8),
    /// ADDRESS is not exactly the bytes the source prefix needs (`ceil(prefix / 8)`).
    #[error("address has {got} bytes, source prefix needs {want}")]
    AddressLength {
        /// The ADDRESS bytes the option carried.
        got: usize,
        /// The ADDRESS bytes the source prefix needs.
        want: usize,
    },
    /// ADDRESS has a bit set past the source prefix.
    #[error("address has bits set past the source prefix")]
    BitsPastPrefix,
    /// SCOPE PREFIX-LENGTH is not 0, which a query must send.
    #[error("scope prefix {0} is not zero in a query")]
    ScopeInQuery(u8),
    /// The option has fewer than the 4 bytes of FAMILY and the two prefix lengths.
    #[error("option is shorter than its fixed fields")]
    Short,
}

/// Validates the raw OPTION-DATA of an ECS option.
///
/// RFC 7871 §6: "ADDRESS ... MUST be truncated to the number of bits indicated by the SOURCE
/// PREFIX-LENGTH field, padding with 0 bits to pad to the end of the last octet needed." and
/// "SCOPE PREFIX-LENGTH ... In queries, it MUST be set to 0." §7.1.1: "If the family, Source
/// Prefix-Length, and Source Address fields do not match ... the server MUST return FORMERR".
pub fn parse_ecs(data: &[u8]) -> Result<Ecs, EcsError> {
    if data.len() < 4 {
        return Err(EcsError::Short);
    }
    let family = u16::from_be_bytes([data[0], data[1]]);
    let source = data[2];
    let scope = data[3];
    let addr = &data[4..];
    let max = match family {
        1 => 32,
        2 => 128,
        f => return Err(EcsError::Family(f)),
    };
    if source > max {
        return Err(EcsError::SourceTooLong(source));
    }
    let want = usize::from(source).div_ceil(8);
    if addr.len() != want {
        return Err(EcsError::AddressLength {
            got: addr.len(),
            want,
        });
    }
    if scope != 0 {
        return Err(EcsError::ScopeInQuery(scope));
    }
    let rem = source % 8;
    if rem != 0
        && let Some(&last) = addr.last()
        && last & (0xffu8 >> rem) != 0
    {
        return Err(EcsError::BitsPastPrefix);
    }
    let ip = if family == 1 {
        let mut o = [0u8; 4];
        o[..want].copy_from_slice(addr);
        IpAddr::V4(Ipv4Addr::from(o))
    } else {
        let mut o = [0u8; 16];
        o[..want].copy_from_slice(addr);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    Ok(Ecs {
        addr: ip,
        source_prefix: source,
    })
}

/// The ECS option of a response: the query's family, source prefix and address, with our scope.
pub fn response_subnet(ecs: &Ecs, scope: u8) -> ClientSubnet {
    ClientSubnet::new(ecs.addr, ecs.source_prefix, scope)
}

/// What is wrong with a query's OPT record as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OptError {
    /// An option's length runs past the end of the OPT RDATA.
    #[error("an EDNS option runs past the end of the OPT record")]
    Overrun,
    /// More than one ECS option.
    #[error("more than one Client Subnet option")]
    DuplicateEcs,
}

/// Walks the OPT record of a raw DNS message: every option must fit its record (RFC 6891 §6.1.2),
/// and there may be one ECS option at most (RFC 7871 §7.1.1: several are malformed). Returns the
/// OPTION-DATA of the ECS option, if any.
///
/// hickory drops all options of an OPT whose framing is broken (and keeps going), and decodes
/// ECS leniently, so these checks need the bytes as sent. Returns `Ok(None)` when there is no OPT
/// or the message structure itself cannot be walked (hickory has parsed it already).
pub fn scan_opt(msg: &[u8]) -> Result<Option<&[u8]>, OptError> {
    let rd16 = |i: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *msg.get(i)?,
            *msg.get(i + 1)?,
        ])))
    };
    let walk = || -> Option<(usize, usize)> {
        let qd = rd16(4)?;
        let an = rd16(6)?;
        let ns = rd16(8)?;
        let ar = rd16(10)?;
        let mut pos = 12;
        for _ in 0..qd {
            pos = skip_name(msg, pos)? + 4;
        }
        for i in 0..(an + ns + ar) {
            pos = skip_name(msg, pos)?;
            let rtype = rd16(pos)?;
            let rdlen = rd16(pos + 8)?;
            let rdata = pos + 10;
            let end = rdata.checked_add(rdlen)?;
            if end > msg.len() {
                return None;
            }
            if rtype == 41 && i >= an + ns {
                return Some((rdata, end));
            }
            pos = end;
        }
        None
    };
    let Some((start, end)) = walk() else {
        return Ok(None);
    };
    scan_options(&msg[start..end])
}

/// Walks the options of an OPT record's RDATA (see [`scan_opt`]); returns the ECS option's data.
pub fn scan_options(rdata: &[u8]) -> Result<Option<&[u8]>, OptError> {
    let mut ecs = None;
    let mut o = 0;
    while o < rdata.len() {
        let Some(head) = rdata.get(o..o + 4) else {
            return Err(OptError::Overrun);
        };
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let Some(data) = rdata.get(o + 4..o + 4 + len) else {
            return Err(OptError::Overrun);
        };
        if code == 8 {
            if ecs.is_some() {
                return Err(OptError::DuplicateEcs);
            }
            ecs = Some(data);
        }
        o += 4 + len;
    }
    Ok(ecs)
}

/// The offset just past the name starting at `pos`.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            l if l & 0xc0 == 0xc0 => return Some(pos + 2),
            l if l < 64 => pos += 1 + usize::from(l),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_options_parse() {
        let e = parse_ecs(&[0, 1, 24, 0, 192, 0, 2]).unwrap();
        assert_eq!(e.addr, "192.0.2.0".parse::<IpAddr>().unwrap());
        assert_eq!(e.source_prefix, 24);
        let e = parse_ecs(&[0, 2, 0, 0]).unwrap();
        assert_eq!(e.source_prefix, 0);
        let e = parse_ecs(&[0, 1, 20, 0, 10, 1, 0x10]).unwrap();
        assert_eq!(e.addr, "10.1.16.0".parse::<IpAddr>().unwrap());
        let e = parse_ecs(&[0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x12]).unwrap();
        assert_eq!(e.addr, "2001:db8:0:1200::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn every_malformation_is_rejected() {
        assert_eq!(parse_ecs(&[0, 3, 24, 0, 1, 2, 3]), Err(EcsError::Family(3)));
        assert_eq!(
            parse_ecs(&[0, 1, 33, 0, 1, 2, 3, 4, 5]),
            Err(EcsError::SourceTooLong(33))
        );
        assert_eq!(
            parse_ecs(&[0, 2, 129, 0]),
            Err(EcsError::SourceTooLong(129))
        );
        assert_eq!(
            parse_ecs(&[0, 1, 16, 0, 10, 1, 0, 0]),
            Err(EcsError::AddressLength { got: 4, want: 2 })
        );
        assert_eq!(
            parse_ecs(&[0, 1, 24, 0, 10, 1]),
            Err(EcsError::AddressLength { got: 2, want: 3 })
        );
        assert_eq!(
            parse_ecs(&[0, 1, 20, 0, 10, 1, 0x11]),
            Err(EcsError::BitsPastPrefix)
        );
        assert_eq!(
            parse_ecs(&[0, 1, 24, 8, 10, 1, 2]),
            Err(EcsError::ScopeInQuery(8))
        );
        assert_eq!(parse_ecs(&[0, 1, 24]), Err(EcsError::Short));
    }
}
