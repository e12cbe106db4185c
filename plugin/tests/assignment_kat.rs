//! Known answers for the assignment formula and the sticky values, computed
//! outside Rust by `testdata/assignment-kat.py` (Python's hashlib and math)
//! and committed as `testdata/assignment-kat.json`.
//!
//! Every other prediction of a cohort in the suite calls `bucket_of`, the
//! code under test; this one pins the documented formula itself: the
//! length prefixes, `((h >> 11) + 1) / 2^53`, `-ln(u) / w`, the lowest
//! score winning, only active variants with weight taking part, the
//! default when none has weight, and the configuration's percentages read
//! as basis points; and the same under `assignmentHash: siphash` (the
//! per-variant keys, SipHash-2-4, the same winner rule).

// Test code may fail loudly: a panic is how a test reports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cohort::Config;
use cohort::bucket::{self, Candidate, Draw, StickyHash};
use cohort::config::State;
use cohort::decision::bucket_of;
use serde_json::Value;

fn kat() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/assignment-kat.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

fn u64_of(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

fn key_of(row: &Value) -> Vec<u8> {
    hex_bytes(str_of(row, "key_hex"))
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    let digit = |b: u8| char::from(b).to_digit(16).expect("hex") as u8;
    hex.as_bytes()
        .chunks(2)
        .map(|pair| digit(pair[0]) << 4 | digit(pair[1]))
        .collect()
}

fn state_of(name: &str) -> State {
    match name {
        "active" => State::Active,
        "drained" => State::Drained,
        "disabled" => State::Disabled,
        other => panic!("state {other:?}"),
    }
}

/// `draw` is exactly `m / 2^53`, and within 1e-15 of Python's float.
#[track_caller]
fn check_draw(seed: &str, variant: &str, key: &[u8], row: &Value) {
    check_u(
        bucket::draw(seed.as_bytes(), variant, key),
        seed,
        variant,
        key,
        row,
    );
}

#[track_caller]
fn check_u(got: f64, seed: &str, variant: &str, key: &[u8], row: &Value) {
    let m = u64_of(row, "m");
    assert_eq!(m, (u64_of(row, "h") >> 11) + 1, "{row}");
    let exact = m as f64 / (1u64 << 53) as f64;
    assert_eq!(
        got.to_bits(),
        exact.to_bits(),
        "draw({seed:?}, {variant:?}, {key:?})"
    );
    let python = row["u"].as_f64().expect("u");
    assert!(
        (got - python).abs() <= 1e-15,
        "draw({seed:?}, {variant:?}, {key:?}) = {got:e}, Python {python:e}"
    );
}

#[test]
fn draws_and_winners_match_the_independent_computation() {
    let kat = kat();
    let cases = kat["assignments"].as_array().expect("assignments");
    assert!(cases.len() >= 8);
    let (mut keys, mut three_or_more) = (0, 0);
    for case in cases {
        let name = str_of(case, "name");
        let seed = str_of(case, "seed");
        let variants = case["variants"].as_array().expect("variants");
        three_or_more += usize::from(variants.len() >= 3);
        let default = u64_of(case, "default") as usize;

        // The configuration says the same in percentages.
        let config = Config::from_value(&case["config"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config.seed, seed, "{name}");
        assert_eq!(config.default, default, "{name}");
        assert_eq!(config.variants.len(), variants.len(), "{name}");
        for (v, want) in config.variants.iter().zip(variants) {
            assert_eq!(v.name, str_of(want, "name"), "{name}");
            assert_eq!(u64::from(v.weight), u64_of(want, "weight_bp"), "{name}");
            assert_eq!(v.state, state_of(str_of(want, "state")), "{name}");
        }
        let mut sip_config = case["config"].clone();
        sip_config["assignmentHash"] = "siphash".into();
        let sip_config = Config::from_value(&sip_config).unwrap_or_else(|e| panic!("{name}: {e}"));
        let sip_keys = &case["siphash_keys"];
        for v in &sip_config.variants {
            let k = hex_bytes(str_of(sip_keys, &v.name));
            assert_eq!(k.len(), 16, "{name}");
            let want = [
                u64::from_le_bytes(k[..8].try_into().unwrap()),
                u64::from_le_bytes(k[8..].try_into().unwrap()),
            ];
            assert_eq!(v.sip_key, want, "{name}: the siphash key of {}", v.name);
            assert_eq!(bucket::sip_key(seed.as_bytes(), &v.name), want, "{name}");
        }
        let candidates = |sip: bool| -> Vec<Candidate> {
            config
                .variants
                .iter()
                .zip(&sip_config.variants)
                .enumerate()
                .filter(|(_, (v, _))| v.state == State::Active)
                .map(|(index, (v, s))| Candidate {
                    index,
                    weight: v.weight,
                    draw: if sip {
                        Draw::SipHash(s.sip_key)
                    } else {
                        Draw::Sha256 {
                            seed: seed.as_bytes(),
                            variant: &v.name,
                        }
                    },
                })
                .collect()
        };
        let (active, sip_active) = (candidates(false), candidates(true));

        for row in case["keys"].as_array().expect("keys") {
            keys += 1;
            let key = key_of(row);
            let draws = row["draws"].as_array().expect("draws");
            assert_eq!(draws.len(), variants.len());
            for (d, v) in draws.iter().zip(variants) {
                assert_eq!(str_of(d, "variant"), str_of(v, "name"));
                check_draw(seed, str_of(d, "variant"), &key, d);
            }
            let winner = row["winner"]
                .as_str()
                .map(|w| config.variant_named(w.as_bytes()).expect("a variant"));
            assert_eq!(
                bucket::assign(&key, active.iter().copied()),
                winner,
                "{name}: assign for key {row}"
            );
            let expected = str_of(row, "bucket_of");
            assert_eq!(
                config.variants[bucket_of(&config, &key)].name,
                expected,
                "{name}: bucket_of for key {}",
                row["key_hex"]
            );

            let sip = &row["siphash"];
            let sip_draws = sip["draws"].as_array().expect("siphash draws");
            assert_eq!(sip_draws.len(), variants.len());
            for (d, v) in sip_draws.iter().zip(&sip_config.variants) {
                assert_eq!(str_of(d, "variant"), v.name);
                assert_eq!(
                    bucket::siphash24(v.sip_key, &key),
                    u64_of(d, "h"),
                    "{name}: siphash of {}",
                    row["key_hex"]
                );
                check_u(Draw::SipHash(v.sip_key).of(&key), seed, &v.name, &key, d);
            }
            let sip_winner = sip["winner"]
                .as_str()
                .map(|w| config.variant_named(w.as_bytes()).expect("a variant"));
            assert_eq!(
                bucket::assign(&key, sip_active.iter().copied()),
                sip_winner,
                "{name}: siphash assign for key {row}"
            );
            assert_eq!(
                sip_config.variants[bucket_of(&sip_config, &key)].name,
                str_of(sip, "bucket_of"),
                "{name}: siphash bucket_of for key {}",
                row["key_hex"]
            );
        }
    }
    assert!(keys >= 40, "{keys}");
    assert!(three_or_more >= 3, "{three_or_more}");
}

#[test]
fn field_boundaries_are_length_prefixed() {
    let kat = kat();
    let rows = kat["boundary_draws"].as_array().expect("boundary_draws");
    for row in rows {
        check_draw(
            str_of(row, "seed"),
            str_of(row, "variant"),
            &key_of(row),
            row,
        );
    }
    // ("ab", "c") and ("a", "bc") concatenate alike: only the prefixes part them.
    assert_ne!(u64_of(&rows[0], "m"), u64_of(&rows[1], "m"));
}

#[test]
fn sticky_values_match_the_independent_computation() {
    let kat = kat();
    let rows = kat["sticky"].as_array().expect("sticky");
    assert!(rows.len() >= 8);
    for row in rows {
        let name = str_of(row, "name");
        assert_eq!(
            StickyHash::Sha256.value(name),
            str_of(row, "sha256"),
            "{name}"
        );
        assert_eq!(bucket::traefik_sticky_value(name), str_of(row, "sha256"));
        assert_eq!(StickyHash::Fnv.value(name), str_of(row, "fnv"), "{name}");
    }
}

/// The one-off draws and visitor ids, step by step from each boot (the
/// counter is shared, so the order matters), as Python computed them.
#[test]
fn id_generator_draws_and_ids_match_the_independent_computation() {
    let kat = kat();
    let sequences = kat["id_generator"].as_array().expect("id_generator");
    let mut steps = 0;
    for seq in sequences {
        let mut ids = bucket::IdGenerator::new(&hex_bytes(str_of(seq, "boot_hex")));
        for (n, step) in seq["steps"].as_array().expect("steps").iter().enumerate() {
            steps += 1;
            if let Some(draw) = step["draw"].as_u64() {
                assert_eq!(ids.next_draw(), draw, "step {n} of {seq}");
            } else {
                let now: u128 = str_of(step, "now_nanos").parse().expect("a number");
                let data: Vec<Vec<u8>> = step["request_data_hex"]
                    .as_array()
                    .expect("request data")
                    .iter()
                    .map(|d| hex_bytes(d.as_str().expect("hex")))
                    .collect();
                let data: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
                assert_eq!(
                    ids.next_id(now, &data),
                    str_of(step, "id"),
                    "step {n} of {seq}"
                );
            }
        }
    }
    assert!(steps >= 15, "{steps}");
}

#[test]
fn one_off_picks_match_the_independent_computation() {
    let kat = kat();
    for row in kat["picks"].as_array().expect("picks") {
        let names = ["a", "b", "c", "d"];
        let weights: Vec<u32> = row["weights_bp"]
            .as_array()
            .expect("weights")
            .iter()
            .map(|w| u32::try_from(w.as_u64().expect("a weight")).expect("small"))
            .collect();
        let candidates: Vec<Candidate> = weights
            .iter()
            .enumerate()
            .map(|(index, &weight)| Candidate {
                index,
                weight,
                draw: Draw::Sha256 {
                    seed: b"",
                    variant: names[index],
                },
            })
            .collect();
        let want = row["index"].as_u64().map(|i| i as usize);
        assert_eq!(
            bucket::pick(u64_of(row, "draw"), candidates.iter().copied()),
            want,
            "{row}"
        );
    }
}
