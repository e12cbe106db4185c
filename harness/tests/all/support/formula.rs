//! The assignment formula as documented (README, `plugin/src/bucket.rs`),
//! written again here from the text and checked against the answers
//! Python's hashlib computed (`testdata/assignment-kat.py`), so that the
//! end-to-end tests predict every cohort without calling the code under
//! test (`cohort::decision::bucket_of`).
//!
//! ```text
//! h   = first 8 bytes, big-endian, of
//!       SHA-256(u32be(len(seed)) seed u32be(len(v)) v key)
//! u_v = ((h >> 11) + 1) / 2^53
//! the cohort = argmin over the active variants with weight > 0 of
//!              -ln(u_v) / weight_v, else the default variant
//! ```
//!
//! and under `assignmentHash: siphash`, `h = SipHash-2-4(key)` under the
//! 16-byte key `SHA-256(u32be(len(seed)) seed u32be(len(v)) v)[..16]`,
//! here by the standard library's SipHasher (SipHash-2-4, deprecated but
//! an implementation that shares nothing with the plugin's).

use ::cohort::Config;
use ::cohort::bucket::AssignmentHash;
use ::cohort::config::State;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `u32be(len(seed)) seed u32be(len(v)) v`, what both formulas hash first.
fn seeded(seed: &[u8], variant: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(8 + seed.len() + variant.len());
    for field in [seed, variant] {
        input.extend_from_slice(&u32::try_from(field.len()).expect("short").to_be_bytes());
        input.extend_from_slice(field);
    }
    input
}

/// `((h >> 11) + 1) / 2^53`.
fn unit(h: u64) -> f64 {
    ((h >> 11) + 1) as f64 / 9_007_199_254_740_992.0
}

/// A formula's `u_v` for (seed, variant, key).
type Formula = fn(&[u8], &[u8], &[u8]) -> f64;

/// `u_v` for one (seed, variant, key).
pub fn draw(seed: &[u8], variant: &[u8], key: &[u8]) -> f64 {
    let mut input = seeded(seed, variant);
    input.extend_from_slice(key);
    let digest = Sha256::digest(&input);
    unit(
        digest[..8]
            .iter()
            .fold(0u64, |h, &b| (h << 8) | u64::from(b)),
    )
}

/// `u_v` for one (seed, variant, key) under `assignmentHash: siphash`.
pub fn sip_draw(seed: &[u8], variant: &[u8], key: &[u8]) -> f64 {
    use std::hash::Hasher;
    let k = Sha256::digest(seeded(seed, variant));
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new_with_keys(word(&k[..8]), word(&k[8..16]));
    hasher.write(key);
    unit(hasher.finish())
}

/// The index of the variant `key` falls into under `config`.
pub fn cohort_index(config: &Config, key: &[u8]) -> usize {
    let mut best: Option<(f64, usize)> = None;
    for (i, v) in config.variants.iter().enumerate() {
        if v.state != State::Active || v.weight == 0 {
            continue;
        }
        let draw = match config.assignment_hash {
            AssignmentHash::Sha256 => draw,
            AssignmentHash::SipHash => sip_draw,
        };
        let score =
            -draw(config.seed.as_bytes(), v.name.as_bytes(), key).ln() / f64::from(v.weight);
        if best.is_none_or(|(s, _)| score < s) {
            best = Some((score, i));
        }
    }
    best.map_or(config.default, |(_, i)| i)
}

/// The name of the variant `key` falls into under `config`.
pub fn cohort_of(config: &Config, key: &[u8]) -> String {
    config.variants[cohort_index(config, key)].name.clone()
}

#[test]
fn the_formula_here_gives_the_answers_python_gave() {
    let text = super::testdata("assignment-kat.json").unwrap();
    let kat: Value = serde_json::from_str(&text).unwrap();
    let mut checked = 0;
    for case in kat["assignments"].as_array().unwrap() {
        let config = Config::from_value(&case["config"]).unwrap();
        let mut sip_config = case["config"].clone();
        sip_config["assignmentHash"] = "siphash".into();
        let sip_config = Config::from_value(&sip_config).unwrap();
        let seed = case["seed"].as_str().unwrap();
        for row in case["keys"].as_array().unwrap() {
            let digit = |b: u8| char::from(b).to_digit(16).unwrap() as u8;
            let key: Vec<u8> = row["key_hex"]
                .as_str()
                .unwrap()
                .as_bytes()
                .chunks(2)
                .map(|pair| digit(pair[0]) << 4 | digit(pair[1]))
                .collect();
            // Each formula's draws and cohort, against its own answers.
            let formulas: [(Formula, &Config, &Value); 2] = [
                (draw, &config, row),
                (sip_draw, &sip_config, &row["siphash"]),
            ];
            for (formula, config, answers) in formulas {
                for d in answers["draws"].as_array().unwrap() {
                    let m = d["m"].as_u64().unwrap();
                    let got = formula(
                        seed.as_bytes(),
                        d["variant"].as_str().unwrap().as_bytes(),
                        &key,
                    );
                    assert_eq!(got, m as f64 / 9_007_199_254_740_992.0, "{d}");
                }
                assert_eq!(
                    cohort_of(config, &key),
                    answers["bucket_of"].as_str().unwrap(),
                    "{}: {row}",
                    case["name"]
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked}");
}
