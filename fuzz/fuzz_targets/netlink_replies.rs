//! Raw bytes as one datagram of rtnetlink replies: read as the answer to a request (its
//! ACK or error) and as part of a dump, each payload then as a link, an address and a
//! route. Nothing may panic or read past the datagram. A dump's payloads are the
//! datagram's own bytes; an error is an errno the kernel can send or invalid data.

#![no_main]

use berth_network::netlink::fuzzing::{ack, addr, dump_replies, link, route};
use libfuzzer_sys::fuzz_target;

fn errno_ok(e: &std::io::Error) -> bool {
    match e.raw_os_error() {
        Some(n) => n > 0 && n < 4096,
        None => e.kind() == std::io::ErrorKind::InvalidData,
    }
}

fuzz_target!(|data: &[u8]| {
    // The first four bytes are the sequence number asked for; the rest is the datagram.
    let Some((seq, buf)) = data.split_first_chunk::<4>() else {
        return;
    };
    let seq = u32::from_ne_bytes(*seq);
    if let Some(Err(e)) = ack(buf, seq) {
        assert!(errno_ok(&e), "{e}");
    }
    match dump_replies(buf, seq) {
        Ok((payloads, _done)) => {
            let total: usize = payloads.iter().map(|p| p.len() + 16).sum();
            assert!(total <= buf.len());
            for p in &payloads {
                if let Some(l) = link(p) {
                    assert!(
                        l.name.len() <= p.len() * 3,
                        "the name comes from the payload"
                    );
                }
                if let Some((_, _, prefix)) = addr(p) {
                    assert_eq!(prefix, p[1]);
                }
                if let Some(r) = route(p) {
                    assert_eq!(r.dst_len, p[1]);
                    assert_ne!(r.table, 255, "the local table is left out");
                }
            }
        }
        Err(e) => assert!(errno_ok(&e), "{e}"),
    }
    // The datagram itself as a payload too (a fuzzer finds attribute shapes quicker).
    let _ = (link(buf), addr(buf), route(buf));
});
