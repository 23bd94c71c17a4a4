//! Reading a query's structure from its bytes as sent: where the OPT and TSIG records are, and
//! what the OPT record's options say.
//!
//! hickory parses messages leniently (it drops every option of an OPT whose framing is broken,
//! decodes ECS loosely and does not care where a TSIG record sits), so the checks the RFCs ask
//! of a server read the bytes themselves. Nothing here allocates.

use std::ops::Range;

/// Where the records of interest are in a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// The OPT record of the additional section (the first, if several).
    pub opt: Option<OptAt>,
    /// Several OPT records (RFC 6891 §6.1.1: FORMERR).
    pub opt_count: usize,
    /// A TSIG record, if any (the first, if several).
    pub tsig: Option<TsigAt>,
}

/// An OPT record: its CLASS (the UDP payload size), TTL (extended RCODE, version, flags) and
/// RDATA (the options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptAt {
    /// The record's CLASS: the requestor's UDP payload size.
    pub class: u16,
    /// The record's TTL bytes: extended RCODE, EDNS version, then the flags (DO is the top bit
    /// of the third byte).
    pub ttl: [u8; 4],
    /// Where the RDATA (the options) sits in the message, as a byte range.
    pub rdata: Range<usize>,
}

/// A TSIG record (RFC 8945).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigAt {
    /// It is the last record of the additional section, as RFC 8945 §5.1 requires.
    pub last: bool,
    /// It is in the additional section at all.
    pub in_additional: bool,
}

fn be16(msg: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]))
}

/// The offset just past the name starting at `pos` (a compression pointer ends it).
pub fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
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

/// Walks every record of `msg`; `None` when the structure cannot be walked (hickory's parse
/// decides what to answer then).
pub fn layout(msg: &[u8]) -> Option<Layout> {
    let qd = usize::from(be16(msg, 4)?);
    let an = usize::from(be16(msg, 6)?);
    let ns = usize::from(be16(msg, 8)?);
    let ar = usize::from(be16(msg, 10)?);
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(msg, pos)?.checked_add(4)?;
    }
    let mut out = Layout::default();
    let total = an + ns + ar;
    for i in 0..total {
        pos = skip_name(msg, pos)?;
        let rtype = be16(msg, pos)?;
        let class = be16(msg, pos + 2)?;
        let ttl = [
            *msg.get(pos + 4)?,
            *msg.get(pos + 5)?,
            *msg.get(pos + 6)?,
            *msg.get(pos + 7)?,
        ];
        let rdlen = usize::from(be16(msg, pos + 8)?);
        let rdata = pos + 10;
        let end = rdata.checked_add(rdlen)?;
        if end > msg.len() {
            return None;
        }
        let additional = i >= an + ns;
        match rtype {
            41 if additional => {
                out.opt_count += 1;
                if out.opt.is_none() {
                    out.opt = Some(OptAt {
                        class,
                        ttl,
                        rdata: rdata..end,
                    });
                }
            }
            250 if out.tsig.is_none() => {
                out.tsig = Some(TsigAt {
                    last: i + 1 == total,
                    in_additional: additional,
                })
            }
            _ => {}
        }
        pos = end;
    }
    Some(out)
}

/// What a query's OPT record asks for (RFC 6891), read from the bytes as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptIn<'m> {
    /// The requestor's UDP payload size.
    pub payload: u16,
    /// The EDNS version; anything but 0 is answered BADVERS (RFC 6891 §6.1.3).
    pub version: u8,
    /// The DO bit (RFC 3225), which the response's OPT must copy.
    pub dnssec_ok: bool,
    /// The ECS option's data (RFC 7871), unvalidated.
    pub ecs: Option<&'m [u8]>,
    /// The COOKIE option's data (RFC 7873), unvalidated.
    pub cookie: Option<&'m [u8]>,
    /// An NSID option (RFC 5001) asks for our name server identifier.
    pub nsid: bool,
    /// Options other than ECS, COOKIE and NSID (ignored, RFC 6891 §6.1.2).
    pub others: bool,
}

/// An OPT record whose options break the framing rules: FORMERR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OptError {
    /// An option's length runs past the end of the OPT RDATA.
    #[error("an EDNS option runs past the end of the OPT record")]
    Overrun,
    /// More than one ECS option.
    #[error("more than one Client Subnet option")]
    DuplicateEcs,
    /// More than one COOKIE option.
    #[error("more than one COOKIE option")]
    DuplicateCookie,
}

/// Reads an OPT record's fields and walks its options: every option must fit the record
/// (RFC 6891 §6.1.2); ECS (RFC 7871 §7.1.1) and COOKIE (RFC 7873 §5.2) may appear once.
pub fn read_opt<'m>(msg: &'m [u8], at: &OptAt) -> Result<OptIn<'m>, OptError> {
    let mut o = OptIn {
        payload: at.class,
        version: at.ttl[1],
        dnssec_ok: at.ttl[2] & 0x80 != 0,
        ..OptIn::default()
    };
    let rdata = msg.get(at.rdata.clone()).ok_or(OptError::Overrun)?;
    let mut i = 0;
    while i < rdata.len() {
        let head = rdata.get(i..i + 4).ok_or(OptError::Overrun)?;
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let data = rdata.get(i + 4..i + 4 + len).ok_or(OptError::Overrun)?;
        match code {
            8 if o.ecs.is_some() => return Err(OptError::DuplicateEcs),
            8 => o.ecs = Some(data),
            10 if o.cookie.is_some() => return Err(OptError::DuplicateCookie),
            10 => o.cookie = Some(data),
            3 => o.nsid = true,
            _ => o.others = true,
        }
        i += 4 + len;
    }
    Ok(o)
}

/// Extended DNS Error codes we send (RFC 8914 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Ede {
    /// 18: the request is not allowed (zone transfers).
    Prohibited = 18,
    /// 20: not authoritative for the name.
    NotAuthoritative = 20,
    /// 21: the class or operation is not supported.
    NotSupported = 21,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `a.` A with the given additional records appended (raw).
    fn query(additional: &[&[u8]]) -> Vec<u8> {
        let mut m = vec![
            0x12,
            0x34,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            additional.len() as u8,
        ];
        m.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        for r in additional {
            m.extend_from_slice(r);
        }
        m
    }

    fn opt(flags: u16, options: &[u8]) -> Vec<u8> {
        let mut r = vec![0, 0, 41, 0x04, 0xd0, 0, 0];
        r.extend_from_slice(&flags.to_be_bytes());
        r.extend_from_slice(&(options.len() as u16).to_be_bytes());
        r.extend_from_slice(options);
        r
    }

    fn tsig() -> Vec<u8> {
        // Owner "k.", TSIG, class ANY, TTL 0, two bytes of (unread) RDATA.
        vec![1, b'k', 0, 0, 250, 0, 255, 0, 0, 0, 0, 0, 2, 0, 0]
    }

    #[test]
    fn opt_fields_and_options_are_read() {
        let m = query(&[&opt(
            0x8000,
            &[
                0, 8, 0, 4, 0, 1, 0, 0, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 3, 0, 0, 0xfd,
                0xe9, 0, 1, 9,
            ],
        )]);
        let l = layout(&m).unwrap();
        assert_eq!(l.opt_count, 1);
        let o = read_opt(&m, l.opt.as_ref().unwrap()).unwrap();
        assert_eq!(o.payload, 1232);
        assert!(o.dnssec_ok);
        assert_eq!(o.ecs, Some(&[0u8, 1, 0, 0][..]));
        assert_eq!(o.cookie, Some(&[1u8, 2, 3, 4, 5, 6, 7, 8][..]));
        assert!(o.nsid && o.others);
    }

    #[test]
    fn broken_framing_and_duplicates_are_errors() {
        let m = query(&[&opt(0, &[0, 8, 0, 9, 0, 1])]);
        let l = layout(&m).unwrap();
        assert_eq!(
            read_opt(&m, l.opt.as_ref().unwrap()),
            Err(OptError::Overrun)
        );
        let m = query(&[&opt(
            0,
            &[
                0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8,
            ],
        )]);
        let l = layout(&m).unwrap();
        assert_eq!(
            read_opt(&m, l.opt.as_ref().unwrap()),
            Err(OptError::DuplicateCookie)
        );
        let m = query(&[&opt(0, &[]), &opt(0, &[])]);
        assert_eq!(layout(&m).unwrap().opt_count, 2);
    }

    #[test]
    fn tsig_position_is_known() {
        let m = query(&[&opt(0, &[]), &tsig()]);
        assert_eq!(
            layout(&m).unwrap().tsig,
            Some(TsigAt {
                last: true,
                in_additional: true
            })
        );
        let m = query(&[&tsig(), &opt(0, &[])]);
        assert!(!layout(&m).unwrap().tsig.unwrap().last);
    }

    #[test]
    fn truncated_messages_cannot_be_walked() {
        let mut m = query(&[&opt(0, &[])]);
        m.truncate(m.len() - 3);
        assert_eq!(layout(&m), None);
    }
}
