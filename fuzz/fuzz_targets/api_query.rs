//! A query string as the router reads it: parameters, Docker's booleans and integers, the
//! `filters` JSON in both of its forms, and `POST /build`'s query (build args, labels, ssh,
//! extra hosts). Nothing may panic and every refusal is a 400; filters that parse have
//! the values they were given (each array string, each `true` key).

#![no_main]

use berth_api::fuzzing::{Query, build_request, filters, int};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let q = Query::parse(&text);
    for k in [
        "all", "limit", "size", "t", "timeout", "h", "w", "tail", "since", "force", "stream",
    ] {
        let _ = q.bool(k);
        let _ = q.bool_or(k, true);
        let _ = q.all(k);
        match int(&q, k) {
            Ok(Some(v)) => assert_eq!(q.get(k).map(|s| s.parse::<i64>().ok()), Some(Some(v))),
            Ok(None) => assert!(q.get(k).is_none_or(str::is_empty)),
            Err(s) => assert_eq!(s, 400),
        }
    }
    match filters(&q) {
        Ok(f) => {
            if let Some(raw) = q.get("filters").filter(|r| !r.is_empty()) {
                let v: serde_json::Value = serde_json::from_str(raw).expect("it parsed");
                let obj = v.as_object().expect("filters are an object");
                for (k, vals) in &f {
                    let given = &obj[k];
                    for val in vals {
                        let there = match given {
                            serde_json::Value::Array(a) => {
                                a.iter().any(|x| x.as_str() == Some(val))
                            }
                            serde_json::Value::Object(o) => {
                                o.get(val).and_then(|b| b.as_bool()) == Some(true)
                            }
                            serde_json::Value::String(s) => s == val,
                            _ => false,
                        };
                        assert!(there, "{k}={val} not in {given}");
                    }
                }
            } else {
                assert!(f.is_empty());
            }
        }
        Err(s) => assert_eq!(s, 400),
    }
    if let Err(s) = build_request(&q) {
        assert_eq!(s, 400);
    }
    // The whole input as a `filters` value too (the fuzzer's JSON reaches it unescaped).
    let mut ser = form_urlencoded::Serializer::new(String::new());
    ser.append_pair("filters", &text);
    let q = Query::parse(&ser.finish());
    assert_eq!(q.get("filters"), Some(&*text));
    if let Err(s) = filters(&q) {
        assert_eq!(s, 400);
    }
});
