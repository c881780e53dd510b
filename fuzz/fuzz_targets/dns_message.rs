//! Raw bytes as a DNS message, the way the embedded server reads a query and a client reads
//! an answer. Nothing may panic. A question that is read is answered (A and PTR records,
//! NXDOMAIN, SERVFAIL), and that answer must read back: same id and rcode, every record
//! for the question's name. The name, encoded as a query again, reads back the same; and
//! an error header for any input reads as that error.

#![no_main]

use std::net::Ipv4Addr;

use berth_network::dns::message::{
    CLASS_IN, RCODE_FORMERR, RCODE_NOERROR, RCODE_NXDOMAIN, Rdata, build_query, build_response,
    error_header, parse_question, parse_response, ptr_to_ipv4,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_response(data);
    let _ = ptr_to_ipv4(&String::from_utf8_lossy(data));
    let e = error_header(data, RCODE_FORMERR);
    let r = parse_response(&e).expect("an error header reads");
    assert_eq!((r.rcode, r.answers.len()), (RCODE_FORMERR, 0));

    let Ok(q) = parse_question(data) else { return };
    assert!(q.name.len() <= 253, "{}", q.name);
    assert_eq!(q.name, q.name.to_ascii_lowercase());

    // Encoded again, the name is the same question.
    let again = build_query(q.id, &q.name, q.qtype).expect("a name read can be written");
    let q2 = parse_question(&again).expect("a query built reads");
    assert_eq!(
        (q2.id, &q2.name, q2.qtype, q2.qclass),
        (q.id, &q.name, q.qtype, CLASS_IN)
    );

    // Answered with records from the input, the answer reads back.
    let ip = Ipv4Addr::from(u32::from(q.id) << 16 | u32::from(q.qtype));
    let answers = [
        Rdata::A(ip),
        Rdata::Ptr(q.name.clone()),
        Rdata::Ptr(format!(
            "{}.{}",
            q.name,
            "x".repeat(usize::from(q.id % 300))
        )),
        Rdata::Other(q.qtype),
    ];
    for (rcode, answers) in [(RCODE_NOERROR, &answers[..]), (RCODE_NXDOMAIN, &[][..])] {
        let resp = build_response(&q, data, rcode, answers, 600, true);
        let r = parse_response(&resp).unwrap_or_else(|e| panic!("answer to {q:?}: {e}: {resp:?}"));
        assert_eq!((r.id, r.rcode), (q.id, rcode));
        for (name, rd) in &r.answers {
            assert_eq!(name, &q.name);
            assert!(answers.contains(rd), "{rd:?} not among {answers:?}");
        }
        // Every answer that can be written is there.
        let expected = answers
            .iter()
            .filter(|a| match a {
                Rdata::A(_) => true,
                Rdata::Ptr(n) => build_query(0, n, 0).is_ok(),
                Rdata::Other(_) => false,
            })
            .count();
        assert_eq!(r.answers.len(), expected, "{r:?}");
    }
});
