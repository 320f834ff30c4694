//! Fuzzes the ClientHello reader: any input, fed whole and split in two at a point taken
//! from the input, must give the same answer and never panic.
#![no_main]

use egress_core::tls::{ClientHelloReader, Progress};
use libfuzzer_sys::fuzz_target;

fn answer(chunks: &[&[u8]]) -> String {
    let mut reader = ClientHelloReader::new(4096);
    let mut last = String::new();
    for chunk in chunks {
        match reader.feed(chunk) {
            Ok(Progress::NeedMore { .. }) => last = "need more".into(),
            Ok(Progress::Done(hello)) => return format!("{hello:?}"),
            Err(e) => return format!("{e:?}"),
        }
    }
    last
}

fuzz_target!(|data: &[u8]| {
    let cut = data
        .first()
        .map_or(0, |b| usize::from(*b) % (data.len() + 1));
    assert_eq!(answer(&[data]), answer(&[&data[..cut], &data[cut..]]));
});
