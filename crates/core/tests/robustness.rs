//! Arbitrary and mutated bytes never panic the normaliser, and the accounting holds
//! whatever comes in. A deterministic generator keeps failures reproducible (the
//! seed is in the message); fuzz/ has the coverage-guided version of the same target.

mod common;

use common::*;
use muster_core::normalize::Settings;
use muster_core::sources::SourceKind;

/// xorshift64*: small, deterministic, good enough to shake a parser.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(8) {
        if out.is_empty() {
            out.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(out.len());
        match rng.below(6) {
            0 => out[at] = rng.next() as u8,
            1 => out.truncate(at),
            2 => {
                out.remove(at);
            }
            3 => out.insert(at, *b"{}[]\",:\\ \n-0".get(rng.below(13)).unwrap_or(&b'x')),
            4 => {
                let len = rng.below(64).min(out.len() - at);
                let chunk = out[at..at + len].to_vec();
                let to = rng.below(out.len());
                out.splice(to..to, chunk);
            }
            _ => out[at] ^= 1 << rng.below(8),
        }
    }
    out
}

fn check(key: &str, bytes: Vec<u8>, settings: &Settings, seed: u64) {
    let (outcome, store) = run_bytes(key, bytes, settings);
    let s = &outcome.summary;
    assert_eq!(
        s.records_in,
        s.records_out + s.quarantined,
        "seed {seed}: accounting {s:?}"
    );
    assert_eq!(
        lake_events(&store).len() as u64,
        s.records_out,
        "seed {seed}: events written vs counted"
    );
}

fn seeds_for(source: SourceKind) -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    let dir = events_dir().join(source.name());
    for path in files_under(&dir) {
        let bytes = std::fs::read(&path).unwrap();
        // Mutate the decoded text (to reach the parser) and, once, the gzip itself.
        let mut text = Vec::new();
        if std::io::Read::read_to_end(
            &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
            &mut text,
        )
        .is_ok()
        {
            seeds.push(text);
        }
        seeds.push(bytes);
    }
    seeds
}

#[test]
fn mutated_inputs_never_panic_and_accounting_holds() {
    let iterations: u64 = std::env::var("MUSTER_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    for source in [
        SourceKind::CloudTrail,
        SourceKind::VpcFlow,
        SourceKind::Elb,
        SourceKind::S3Access,
    ] {
        let seeds = seeds_for(source);
        assert!(
            !seeds.is_empty(),
            "no samples for {} in events/",
            source.name()
        );
        let settings = Settings {
            source: Some(source),
            max_record_bytes: 4096,
            ..Settings::default()
        };
        for i in 0..iterations {
            let seed = 0x9e37_79b9_7f4a_7c15 ^ (i + 1) ^ ((source as u64) << 32);
            let mut rng = Rng(seed);
            let base = &seeds[rng.below(seeds.len())];
            check("fuzz/input", mutate(&mut rng, base), &settings, seed);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    for source in [
        None,
        Some(SourceKind::CloudTrail),
        Some(SourceKind::VpcFlow),
        Some(SourceKind::Elb),
        Some(SourceKind::S3Access),
    ] {
        let settings = Settings {
            source,
            ..Settings::default()
        };
        for i in 0..200u64 {
            let seed = 0xdead_beef ^ i;
            let mut rng = Rng(seed);
            let len = rng.below(2048);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            check("fuzz/random", bytes, &settings, seed);
        }
    }
}
