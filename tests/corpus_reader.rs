//! The JSONL reader's fast scan against its serde_json reference path: on generated lines
//! (valid, broken, escaped, long, nested, non-ASCII), both give the same batch or the same error.

use gristmill::corpus::{parse_chunk, parse_chunk_reference, Batch, Options, Utf8Policy};
use proptest::prelude::*;

fn opts(id: bool, numbers: bool, policy: Utf8Policy) -> Options {
    Options {
        display: "in.jsonl".into(),
        text_field: "text".into(),
        id_field: id.then(|| "id".to_string()),
        policy,
        number_fields: if numbers { vec!["q".into(), "text".into()] } else { vec![] },
    }
}

/// Batch equality with NaN equal to itself.
fn key(b: &Batch) -> impl PartialEq + std::fmt::Debug + '_ {
    let bits: Vec<Vec<u64>> = b.numbers.iter().map(|v| v.iter().map(|x| x.to_bits()).collect()).collect();
    (
        (&b.text, &b.text_offsets, &b.valid, &b.ids, &b.id_offsets, &b.id_is_json),
        (&b.lines, &b.starts, &b.ends, bits, &b.number_kinds),
    )
}

fn check(data: &[u8], o: &Options) {
    let fast = parse_chunk(data, 1, 0, o);
    let slow = parse_chunk_reference(data, 1, 0, o);
    match (&fast, &slow) {
        (Ok(a), Ok(b)) => assert_eq!(key(a), key(b), "{:?}", String::from_utf8_lossy(data)),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{:?}", String::from_utf8_lossy(data)),
        _ => panic!("fast {fast:?} vs reference {slow:?} on {:?}", String::from_utf8_lossy(data)),
    }
}

/// Pieces of string literals' bodies: plain runs (some long, to cross the 64-byte windows),
/// escapes of every kind (paired and lone surrogates), raw bytes JSON forbids, non-ASCII.
fn body() -> impl Strategy<Value = String> {
    // mostly valid pieces, so that many lines take the fast path; a few that JSON forbids
    let piece = prop_oneof![
        8 => "[a-z ]{0,20}",
        4 => "[a-z]{60,140}",
        4 => Just("\\n".to_string()),
        2 => Just("\\t".to_string()),
        2 => Just("\\\"".to_string()),
        2 => Just("\\\\".to_string()),
        1 => Just("\\/".to_string()),
        1 => Just("\\b\\f\\r".to_string()),
        1 => Just("\\u00e9".to_string()),
        1 => Just("\\u20AC".to_string()),
        1 => Just("\\ud83d\\ude00".to_string()),
        1 => Just("é😀ü".to_string()),
        1 => Just("\\ud800".to_string()),
        1 => Just("\\udc00".to_string()),
        1 => Just("\\ud800\\u0041".to_string()),
        1 => Just("\\u12".to_string()),
        1 => Just("\\x".to_string()),
        1 => Just("\t".to_string()),
        1 => Just("\"".to_string()),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        6 => body().prop_map(|b| format!("\"{b}\"")),
        1 => Just("null".to_string()),
        1 => Just("true".to_string()),
        1 => Just("false".to_string()),
        1 => Just("-0".to_string()),
        1 => Just("12".to_string()),
        1 => Just("-1.5e3".to_string()),
        1 => Just("1E+400".to_string()),
        1 => Just("0".to_string()),
        1 => Just("01".to_string()),
        1 => Just("1.".to_string()),
        1 => Just("NaN".to_string()),
        1 => Just("tru".to_string()),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec(("[a-z]{1,3}", inner), 0..3).prop_map(|v| {
                let kv: Vec<String> = v.into_iter().map(|(k, x)| format!("\"{k}\": {x}")).collect();
                format!("{{{}}}", kv.join(","))
            }),
        ]
    })
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        Just("text".to_string()),
        Just("text".to_string()),
        Just("id".to_string()),
        Just("q".to_string()),
        Just("other".to_string()),
        Just("t\\u0065xt".to_string()),
    ];
    let obj = (prop::collection::vec((key, value()), 0..5), "[ \t\r]{0,2}").prop_map(|(kv, ws)| {
        let kv: Vec<String> = kv.into_iter().map(|(k, v)| format!("\"{k}\":{ws}{v}")).collect();
        format!("{ws}{{{}}}{ws}", kv.join(&format!(",{ws}")))
    });
    let mutation = prop_oneof![
        6 => Just(None),
        1 => (any::<prop::sample::Index>(), prop_oneof![Just(b'}'), Just(b','), Just(b'"'), Just(0xff_u8), Just(b'\\'), Just(0x01)]).prop_map(Some),
    ];
    (obj, mutation, any::<prop::sample::Index>()).prop_map(|(s, m, cut)| {
        let mut b = s.into_bytes();
        if let Some((at, c)) = m {
            let i = at.index(b.len() + 1);
            if cut.index(2) == 0 && i < b.len() {
                b.remove(i);
            } else {
                b.insert(i, c);
            }
        }
        b
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn fast_scan_matches_serde_json(
        lines in prop::collection::vec(line(), 1..5),
        blank in any::<bool>(),
        id in any::<bool>(),
        numbers in any::<bool>(),
        policy in prop_oneof![Just(Utf8Policy::Error), Just(Utf8Policy::Replace), Just(Utf8Policy::Skip)],
    ) {
        let mut data = lines.join(&b"\n"[..]);
        if blank {
            data.extend_from_slice(b"\n  \n");
        }
        check(&data, &opts(id, numbers, policy));
    }
}

#[test]
fn fixed_cases() {
    let o = opts(true, true, Utf8Policy::Error);
    for case in [
        &br#"{"text": "a", "id": "x", "q": 1}"#[..],
        br#"{"id": "x\u0041", "text": "a"}"#,
        br#"{"id": null, "text": "a"}"#,
        br#"{"id": 3, "text": "a", "q": "s"}"#,
        br#"{"id": 3, "text": 5}"#,
        br#"{"id": 3}"#,
        b"{\"id\": 3, \"text\": \"a\"}\r\n{\"id\": 4, \"text\": \"b\"}",
        b"{\"id\": 3, \"text\": \"\xff\"}",
    ] {
        check(case, &o);
    }
    let long = format!(r#"{{"id": 1, "text": "{}\n{}\u00e9", "q": -0}}"#, "ab\\n".repeat(50), "c".repeat(200));
    check(long.as_bytes(), &o);
    let b = parse_chunk(long.as_bytes(), 1, 0, &o).unwrap();
    assert_eq!(b.numbers[0][0].to_bits(), 0.0f64.to_bits()); // -0 is the integer 0, as in Python
}
