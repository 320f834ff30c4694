//! Fuzzes the request-head parser: any input must give an answer without panicking, the
//! answer for the whole input must not depend on a prefix having been parsed first, and a
//! complete head's upstream head must parse again to the same destination.
#![no_main]

use egress_core::http::{HeadLimits, Parse, parse_request_head};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = HeadLimits {
        max_request_line: 512,
        max_head_bytes: 2048,
        max_headers: 16,
    };
    let whole = parse_request_head(data, &limits);
    let cut = data
        .first()
        .map_or(0, |b| usize::from(*b) % (data.len() + 1));
    if let Ok(Parse::Complete(head)) = parse_request_head(&data[..cut], &limits) {
        // A head complete in a prefix is the same head in the whole input.
        let Ok(Parse::Complete(again)) = &whole else {
            panic!("prefix complete, whole not")
        };
        assert_eq!(head.len(), again.len());
    }
    if let Ok(Parse::Complete(head)) = whole {
        if !head.is_connect() {
            let upstream = head.upstream_head();
            let relaxed = HeadLimits {
                max_request_line: 4096,
                max_head_bytes: 8192,
                max_headers: 64,
            };
            match parse_request_head(&upstream, &relaxed) {
                Ok(Parse::Complete(forwarded)) => {
                    assert_eq!(forwarded.host(), head.host());
                    assert_eq!(forwarded.port(), head.port());
                    assert_eq!(forwarded.body(), head.body());
                }
                other => panic!("upstream head does not parse: {other:?}"),
            }
        }
    }
});
