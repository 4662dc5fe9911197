//! The fuzz targets of `fuzz/` as property tests: each target's function
//! (the very module its fuzzer runs, included by path) over its whole seed
//! corpus, then over inputs proptest makes from the seeds by mutation and
//! from scratch. A crash a fuzzer finds goes into the corpus and is
//! replayed here from then on. `fuzz/run.sh` runs the coverage-guided
//! fuzzers themselves.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[path = "../../fuzz/targets/classify.rs"]
mod classify;
#[path = "../../fuzz/targets/config.rs"]
mod config;
#[path = "../../fuzz/targets/head.rs"]
mod head;
#[path = "../../fuzz/targets/index.rs"]
mod index;
#[path = "../../fuzz/targets/range.rs"]
mod range;
#[path = "../../fuzz/targets/url.rs"]
mod url;
#[path = "../../fuzz/targets/version.rs"]
mod version;

/// The seed corpus of `target`, sorted by name so failures reproduce.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "{}: too few seeds", dir.display());
    seeds
}

/// Pieces the targets' parsers care about, for mutations to insert.
const TOKENS: &[&[u8]] = &[
    b"..",
    b"/",
    b"//",
    b"%",
    b"%2e",
    b"%25",
    b"%00",
    b"%2f",
    b"\\",
    b"?",
    b"#",
    b"@",
    b":",
    b"[",
    b"]",
    b"_",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"=",
    b";",
    b"-",
    b",",
    b" ",
    b"\xff",
    b"\xc3",
    b"HTTPS///",
    b"http://",
    b"bytes=",
    b"file:",
    b"Remap-",
    b"W/\"",
    b"\"",
];

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Token(usize, usize),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Set(at, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, t)| Mutation::Token(at, t)),
        (any::<usize>(), 1usize..16).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<usize>(), 1usize..32).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
        match m {
            Mutation::Set(i, b) if len > 0 => bytes[i % len] = *b,
            Mutation::Set(..) => bytes.push(0),
            Mutation::Insert(i, b) => drop(bytes.splice(at(*i)..at(*i), b.iter().copied())),
            Mutation::Token(i, t) => drop(bytes.splice(at(*i)..at(*i), TOKENS[*t].iter().copied())),
            Mutation::Delete(i, n) => {
                let start = at(*i);
                bytes.drain(start..(start + n).min(len));
            }
            Mutation::Duplicate(i, n) => {
                let start = at(*i);
                let piece = bytes[start..(start + n).min(len)].to_vec();
                bytes.splice(start..start, piece);
            }
        }
    }
    bytes
}

/// Every seed, then `cases` generated inputs: most of them seeds mutated a
/// few times, some plain random bytes.
fn check(target: &str, cases: u32, run: impl Fn(&[u8])) {
    let seeds = corpus(target);
    for (path, bytes) in &seeds {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(bytes))) {
            eprintln!("seed {} fails", path.display());
            std::panic::resume_unwind(panic);
        }
    }
    let seeds: Vec<Vec<u8>> = seeds.into_iter().map(|(_, bytes)| bytes).collect();
    let count = seeds.len();
    let inputs = prop_oneof![
        4 => (0..count, proptest::collection::vec(mutation(), 1..6))
            .prop_map(move |(i, ms)| mutate(seeds[i].clone(), &ms)),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
    ];
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(config)
        .run(&inputs, |input| {
            run(&input);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{target}: {e}"));
}

#[test]
fn fuzz_target_classify_holds_on_corpus_and_mutations() {
    check("classify", 3000, classify::run);
}

#[test]
fn fuzz_target_url_holds_on_corpus_and_mutations() {
    check("url", 3000, url::run);
}

#[test]
fn fuzz_target_head_holds_on_corpus_and_mutations() {
    check("head", 3000, head::run);
}

#[test]
fn fuzz_target_range_holds_on_corpus_and_mutations() {
    check("range", 3000, range::run);
}

#[test]
fn fuzz_target_config_holds_on_corpus_and_mutations() {
    let dir = tempfile::tempdir().unwrap();
    check("config", 400, |data| config::run_in(dir.path(), data));
}

#[test]
fn fuzz_target_index_holds_on_corpus_and_mutations() {
    check("index", 1000, index::run);
}

#[test]
fn fuzz_target_version_holds_on_corpus_and_mutations() {
    check("version", 3000, version::run);
}
