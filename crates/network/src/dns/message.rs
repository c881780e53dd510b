//! Just enough of the DNS wire format (RFC 1035) for the embedded server: parse a query's
//! question, build an answer with A or PTR records, and (for tests and checks) build queries
//! and parse answers. Names are compared lowercase without the trailing dot.

use std::net::Ipv4Addr;

pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const CLASS_IN: u16 = 1;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;

const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
const OPCODE_MASK: u16 = 0x7800;
/// The fixed header before the first question.
const HEADER_LEN: usize = 12;

/// Why a message could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("dns message truncated")]
    Truncated,
    #[error("dns message has no question")]
    NoQuestion,
    #[error("dns name is malformed")]
    BadName,
    #[error("dns name {0:?} cannot be encoded")]
    Unencodable(String),
}

/// The first question of a message, and where it ends in the raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: u16,
    pub flags: u16,
    /// Lowercase, no trailing dot.
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    pub is_response: bool,
    end: usize,
}

/// Record data berth serves or reads back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdata {
    A(Ipv4Addr),
    Ptr(String),
    Other(u16),
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub id: u16,
    pub rcode: u8,
    pub truncated: bool,
    pub answers: Vec<(String, Rdata)>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, DnsError> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or(DnsError::Truncated)
}

/// Reads a (possibly compressed) name at `at`; returns it and the offset just after it.
///
/// A compression pointer must point back before the part of the name read so far, and past
/// the header (RFC 1035 4.1.4: to a prior occurrence): so pointers cannot loop, and a name
/// reads the same wherever its message's bytes are copied with the question first (as an
/// answer copies the question). A label must be UTF-8 without a `.`, so the name, written
/// again, is the same labels; the whole name is at most 255 bytes on the wire.
fn read_name(b: &[u8], mut at: usize) -> Result<(String, usize), DnsError> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    // Where the part being read starts: a pointer must point before it.
    let mut limit = at;
    let mut wire = 1;
    loop {
        let len = *b.get(at).ok_or(DnsError::Truncated)? as usize;
        if len & 0xC0 == 0xC0 {
            let ptr = (u16_at(b, at)? & 0x3FFF) as usize;
            end.get_or_insert(at + 2);
            if ptr < HEADER_LEN || ptr >= limit {
                return Err(DnsError::BadName);
            }
            at = ptr;
            limit = ptr;
            continue;
        }
        if len & 0xC0 != 0 {
            return Err(DnsError::BadName);
        }
        if len == 0 {
            let end = end.unwrap_or(at + 1);
            return Ok((labels.join("."), end));
        }
        let label = b.get(at + 1..at + 1 + len).ok_or(DnsError::Truncated)?;
        wire += 1 + len;
        if wire > 255 || label.contains(&b'.') {
            return Err(DnsError::BadName);
        }
        let label = std::str::from_utf8(label).map_err(|_| DnsError::BadName)?;
        labels.push(label.to_ascii_lowercase());
        at += 1 + len;
    }
}

/// Encodes `name` as uncompressed labels.
pub fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<(), DnsError> {
    let name = name.trim_end_matches('.');
    if name.len() > 253 {
        return Err(DnsError::Unencodable(name.to_string()));
    }
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(DnsError::Unencodable(name.to_string()));
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    Ok(())
}

/// Parses the header and first question of a message.
pub fn parse_question(b: &[u8]) -> Result<Question, DnsError> {
    let id = u16_at(b, 0)?;
    let flags = u16_at(b, 2)?;
    if u16_at(b, 4)? == 0 {
        return Err(DnsError::NoQuestion);
    }
    let (name, at) = read_name(b, HEADER_LEN)?;
    let qtype = u16_at(b, at)?;
    let qclass = u16_at(b, at + 2)?;
    Ok(Question {
        id,
        flags,
        name,
        qtype,
        qclass,
        is_response: flags & FLAG_QR != 0,
        end: at + 4,
    })
}

/// A recursive query for `name`.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(32 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&FLAG_RD.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(name, &mut out)?;
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

/// An answer to `q` (whose raw bytes are `raw`) with `rcode` and `answers` for the question's
/// name. `authoritative` sets AA (names the server owns).
pub fn build_response(
    q: &Question,
    raw: &[u8],
    rcode: u8,
    answers: &[Rdata],
    ttl: u32,
    authoritative: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.end + 16 * answers.len() + 16);
    out.extend_from_slice(&q.id.to_be_bytes());
    let mut flags = FLAG_QR | FLAG_RA | (q.flags & (OPCODE_MASK | FLAG_RD)) | u16::from(rcode);
    if authoritative {
        flags |= FLAG_AA;
    }
    out.extend_from_slice(&flags.to_be_bytes());
    let question = raw.get(HEADER_LEN..q.end).unwrap_or(&[]);
    let qd: u16 = if question.is_empty() { 0 } else { 1 };
    out.extend_from_slice(&qd.to_be_bytes());
    let mut records = Vec::new();
    let mut written: u16 = 0;
    for a in answers {
        if written == u16::MAX {
            break;
        }
        let (ty, data) = match a {
            Rdata::A(ip) => (TYPE_A, ip.octets().to_vec()),
            Rdata::Ptr(name) => {
                let mut d = Vec::new();
                if encode_name(name, &mut d).is_err() {
                    continue;
                }
                (TYPE_PTR, d)
            }
            Rdata::Other(_) => continue,
        };
        records.extend_from_slice(&[0xC0, 0x0C]); // the question's name
        records.extend_from_slice(&ty.to_be_bytes());
        records.extend_from_slice(&CLASS_IN.to_be_bytes());
        records.extend_from_slice(&ttl.to_be_bytes());
        records.extend_from_slice(&(data.len() as u16).to_be_bytes());
        records.extend_from_slice(&data);
        written += 1;
    }
    // The records written: an answer that cannot be (a PTR name too long) is not counted.
    let an = if question.is_empty() { 0 } else { written };
    out.extend_from_slice(&an.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    if an > 0 {
        out.extend_from_slice(&records);
    }
    out
}

/// A minimal error answer when even the question could not be read: header only.
pub fn error_header(raw: &[u8], rcode: u8) -> Vec<u8> {
    let id = raw.get(..2).map(|b| [b[0], b[1]]).unwrap_or([0, 0]);
    let flags = FLAG_QR | FLAG_RA | u16::from(rcode);
    let mut out = id.to_vec();
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    out
}

/// Parses an answer: header, skips the questions, reads the answer records.
pub fn parse_response(b: &[u8]) -> Result<Response, DnsError> {
    let id = u16_at(b, 0)?;
    let flags = u16_at(b, 2)?;
    let qd = u16_at(b, 4)?;
    let an = u16_at(b, 6)?;
    let mut at = HEADER_LEN;
    for _ in 0..qd {
        let (_, next) = read_name(b, at)?;
        at = next + 4;
    }
    let mut answers = Vec::new();
    for _ in 0..an {
        let (name, next) = read_name(b, at)?;
        let ty = u16_at(b, next)?;
        let rdlen = u16_at(b, next + 8)? as usize;
        let data_at = next + 10;
        let data = b.get(data_at..data_at + rdlen).ok_or(DnsError::Truncated)?;
        let rd = match ty {
            TYPE_A if rdlen == 4 => Rdata::A(Ipv4Addr::new(data[0], data[1], data[2], data[3])),
            TYPE_PTR => {
                let (name, end) = read_name(b, data_at)?;
                if end > data_at + rdlen {
                    return Err(DnsError::BadName);
                }
                Rdata::Ptr(name)
            }
            other => Rdata::Other(other),
        };
        answers.push((name, rd));
        at = data_at + rdlen;
    }
    Ok(Response {
        id,
        rcode: (flags & 0x000F) as u8,
        truncated: flags & FLAG_TC != 0,
        answers,
    })
}

/// The address a reverse name (`4.3.2.1.in-addr.arpa`) stands for.
pub fn ptr_to_ipv4(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut o = [0u8; 4];
    let parts: Vec<&str> = rest.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    for (i, p) in parts.iter().rev().enumerate() {
        o[i] = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trip() {
        let q = build_query(0x1234, "Web.Example.", TYPE_A).unwrap();
        let parsed = parse_question(&q).unwrap();
        assert_eq!(parsed.id, 0x1234);
        assert_eq!(parsed.name, "web.example");
        assert_eq!(parsed.qtype, TYPE_A);
        assert_eq!(parsed.qclass, CLASS_IN);
        assert!(!parsed.is_response);
    }

    #[test]
    fn answer_round_trip() {
        let raw = build_query(7, "db", TYPE_A).unwrap();
        let q = parse_question(&raw).unwrap();
        let ips = [
            Rdata::A(Ipv4Addr::new(172, 18, 0, 2)),
            Rdata::A(Ipv4Addr::new(172, 18, 0, 3)),
        ];
        let resp = build_response(&q, &raw, RCODE_NOERROR, &ips, 600, true);
        let r = parse_response(&resp).unwrap();
        assert_eq!(r.id, 7);
        assert_eq!(r.rcode, RCODE_NOERROR);
        assert_eq!(
            r.answers,
            vec![
                ("db".to_string(), ips[0].clone()),
                ("db".to_string(), ips[1].clone())
            ]
        );
        let nx = build_response(&q, &raw, RCODE_NXDOMAIN, &[], 0, false);
        let r = parse_response(&nx).unwrap();
        assert_eq!((r.rcode, r.answers.len()), (RCODE_NXDOMAIN, 0));
    }

    #[test]
    fn ptr_names() {
        assert_eq!(
            ptr_to_ipv4("2.0.18.172.in-addr.arpa"),
            Some(Ipv4Addr::new(172, 18, 0, 2))
        );
        assert_eq!(ptr_to_ipv4("0.18.172.in-addr.arpa"), None);
        assert_eq!(ptr_to_ipv4("example.com"), None);
        let raw = build_query(9, "2.0.18.172.in-addr.arpa", TYPE_PTR).unwrap();
        let q = parse_question(&raw).unwrap();
        let resp = build_response(&q, &raw, 0, &[Rdata::Ptr("web".into())], 600, true);
        let r = parse_response(&resp).unwrap();
        assert_eq!(r.answers[0].1, Rdata::Ptr("web".into()));
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        assert_eq!(parse_question(&[]), Err(DnsError::Truncated));
        assert_eq!(parse_question(&[0; 12]), Err(DnsError::NoQuestion));
        // A compression pointer to itself.
        let mut loop_msg = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1];
        assert_eq!(parse_question(&loop_msg), Err(DnsError::BadName));
        loop_msg.truncate(13);
        assert!(parse_question(&loop_msg).is_err());
        let long = "a".repeat(64);
        assert!(build_query(1, &long, TYPE_A).is_err());
        for n in 0..40 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let _ = parse_question(&junk);
            let _ = parse_response(&junk);
        }
        let e = error_header(&[0xAB, 0xCD, 1], RCODE_FORMERR);
        assert_eq!(&e[..2], &[0xAB, 0xCD]);
        assert_eq!(parse_response(&e).unwrap().rcode, RCODE_FORMERR);
    }

    /// Found writing the fuzz target `dns_message` (its round trip): a question whose name is
    /// a pointer forward, to labels after the question, was read; the answer copies the
    /// question and puts its records after it, so the pointer then led into the records
    /// and the answer could not be read back (nor by the client).
    #[test]
    fn a_pointer_forward_or_into_the_header_is_a_bad_name() {
        let mut forward = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        forward.extend_from_slice(&[0xC0, 18, 0, 1, 0, 1, 3, b'w', b'e', b'b', 0]);
        assert_eq!(parse_question(&forward), Err(DnsError::BadName));
        let mut header = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        header.extend_from_slice(&[0xC0, 4, 0, 1, 0, 1]);
        assert_eq!(parse_question(&header), Err(DnsError::BadName));
        // Into its own labels: a loop.
        let mut own = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        own.extend_from_slice(&[1, b'a', 0xC0, 12, 0, 1, 0, 1]);
        assert_eq!(parse_question(&own), Err(DnsError::BadName));
        // Backward, to a name before: what servers send, still read.
        let raw = build_query(3, "web.example", TYPE_A).unwrap();
        let q = parse_question(&raw).unwrap();
        let resp = build_response(&q, &raw, 0, &[Rdata::Ptr("db".into())], 1, true);
        assert_eq!(parse_response(&resp).unwrap().answers[0].0, "web.example");
    }

    /// Found writing the fuzz target `dns_message`: a label holding a `.` (or bytes that are
    /// not UTF-8) was read into a name that, written again, is other labels.
    #[test]
    fn a_label_that_cannot_be_written_back_is_a_bad_name() {
        let mut dot = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        dot.extend_from_slice(&[3, b'a', b'.', b'b', 0, 0, 1, 0, 1]);
        assert_eq!(parse_question(&dot), Err(DnsError::BadName));
        let mut bin = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        bin.extend_from_slice(&[2, 0xff, 0xfe, 0, 0, 1, 0, 1]);
        assert_eq!(parse_question(&bin), Err(DnsError::BadName));
    }

    /// Found writing the fuzz target `dns_message`: an answer that cannot be encoded (a PTR
    /// name over 253 bytes) was left out of the records but counted in ANCOUNT, so the
    /// answer read as truncated.
    #[test]
    fn answers_left_out_are_not_counted() {
        let raw = build_query(5, "x", TYPE_A).unwrap();
        let q = parse_question(&raw).unwrap();
        let answers = [
            Rdata::Ptr("a".repeat(300)),
            Rdata::A(Ipv4Addr::new(10, 0, 0, 1)),
        ];
        let resp = build_response(&q, &raw, 0, &answers, 1, true);
        let r = parse_response(&resp).unwrap();
        assert_eq!(r.answers, vec![("x".to_string(), answers[1].clone())]);
    }
}
