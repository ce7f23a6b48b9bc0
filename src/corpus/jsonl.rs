//! JSONL parsing: one pass per line, text into Arrow buffers, same errors as `gristmill.io`.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::Read;

use rayon::prelude::*;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::scan::Scanner;
use crate::{Error, Result};

/// What to do with bytes that are not UTF-8 (or strings holding lone surrogates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Utf8Policy {
    Error,
    Replace,
    Skip,
}

impl Utf8Policy {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "error" => Ok(Utf8Policy::Error),
            "replace" => Ok(Utf8Policy::Replace),
            "skip" => Ok(Utf8Policy::Skip),
            _ => Err(Error::invalid_argument(format!(
                "on_invalid_utf8 must be 'error', 'replace' or 'skip', got {s:?}"
            ))),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// How the file appears in messages (`display:line`).
    pub display: String,
    pub text_field: String,
    pub id_field: Option<String>,
    pub policy: Utf8Policy,
    /// Fields whose numeric values are wanted too (e.g. a quality score): see [`Batch::numbers`].
    pub number_fields: Vec<String>,
}

/// What a number field holds in one document ([`Batch::number_kinds`]).
pub mod kind {
    pub const MISSING: u8 = 0;
    pub const NULL: u8 = 1;
    pub const NUMBER: u8 = 2;
    pub const BOOL: u8 = 3;
    pub const STRING: u8 = 4;
    pub const ARRAY: u8 = 5;
    pub const OBJECT: u8 = 6;
}

/// Documents of one stretch of a file, in order, Arrow layout.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Text of document `i` is `text[text_offsets[i]..text_offsets[i + 1]]` (valid UTF-8).
    pub text: Vec<u8>,
    pub text_offsets: Vec<i64>,
    /// `false` where the document was skipped for invalid UTF-8 (its text is empty).
    pub valid: Vec<bool>,
    /// With an id field: id bytes + offsets; `id_is_json[i]` marks a non-string id given as
    /// its raw JSON text (the caller renders it like `json.dumps`).
    pub ids: Vec<u8>,
    pub id_offsets: Vec<i64>,
    pub id_is_json: Vec<bool>,
    /// 1-based line number of each document.
    pub lines: Vec<u64>,
    /// Byte range of each document's line (without the newline) in the decompressed file.
    pub starts: Vec<u64>,
    pub ends: Vec<u64>,
    /// Per number field (in `Options::number_fields` order), per document: the value as f64
    /// (numbers as `float()` makes them, booleans 0/1, NaN otherwise) and what the field held
    /// ([`kind`]).
    pub numbers: Vec<Vec<f64>>,
    pub number_kinds: Vec<Vec<u8>>,
}

impl Batch {
    fn new(number_fields: usize) -> Self {
        Batch {
            text_offsets: vec![0],
            id_offsets: vec![0],
            numbers: vec![Vec::new(); number_fields],
            number_kinds: vec![Vec::new(); number_fields],
            ..Default::default()
        }
    }
    pub fn len(&self) -> usize {
        self.lines.len()
    }
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
    fn append(&mut self, other: Batch) {
        let tb = self.text.len() as i64;
        self.text.extend_from_slice(&other.text);
        self.text_offsets.extend(other.text_offsets[1..].iter().map(|o| o + tb));
        let ib = self.ids.len() as i64;
        self.ids.extend_from_slice(&other.ids);
        self.id_offsets.extend(other.id_offsets[1..].iter().map(|o| o + ib));
        self.valid.extend(other.valid);
        self.id_is_json.extend(other.id_is_json);
        self.lines.extend(other.lines);
        self.starts.extend(other.starts);
        self.ends.extend(other.ends);
        for (a, b) in self.numbers.iter_mut().zip(other.numbers) {
            a.extend(b);
        }
        for (a, b) in self.number_kinds.iter_mut().zip(other.number_kinds) {
            a.extend(b);
        }
    }
}

fn corpus_err(where_: &str, msg: impl fmt::Display) -> Error {
    Error::invalid_data(where_, msg)
}

/// Python's `repr()` of a short `str` (field names in messages).
fn py_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::new();
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c)
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

/// Python's `repr()` of a `bytes` value.
fn py_bytes_repr(b: &[u8]) -> String {
    let q = if b.contains(&b'\'') && !b.contains(&b'"') { '"' } else { '\'' };
    let mut out = String::from("b");
    out.push(q);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c if c as char == q => {
                out.push('\\');
                out.push(c as char)
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(q);
    out
}

fn json_type(raw: &str) -> &'static str {
    match raw.trim_start_matches([' ', '\t', '\n', '\r']).as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't') | Some(b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Top-level object: keys in first-occurrence order, last value wins (like `json.loads`).
struct Obj<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Obj<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Obj<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> std::result::Result<Obj<'a>, M::Error> {
                let mut v: Vec<(String, &'a RawValue)> = Vec::new();
                while let Some((k, val)) = m.next_entry::<String, &'a RawValue>()? {
                    if let Some(slot) = v.iter_mut().find(|(kk, _)| *kk == k) {
                        slot.1 = val;
                    } else {
                        v.push((k, val));
                    }
                }
                Ok(Obj(v))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// serde_json's message without its trailing " at line L column C", plus the column.
fn json_error(where_: &str, line: &str, e: serde_json::Error) -> Error {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(p) => msg[..p].to_string(),
        None => msg,
    };
    // serde counts bytes; json.loads counts characters
    let byte_col = e.column().max(1);
    let upto = line.len().min(byte_col.saturating_sub(1));
    let mut b = upto;
    while b > 0 && !line.is_char_boundary(b) {
        b -= 1;
    }
    let col = line[..b].chars().count() + 1;
    corpus_err(where_, format!("invalid JSON: {msg} at column {col}"))
}

/// Decode the JSON string literal `raw` (with quotes) into `out`. A lone surrogate follows
/// `policy`: `Err` with the character index, U+FFFD, or `Ok(false)` = skip the document.
fn unescape_into(raw: &str, out: &mut Vec<u8>, policy: Utf8Policy, where_: &str) -> Result<bool> {
    let b = raw.as_bytes();
    let body = &b[1..b.len() - 1];
    if memchr::memchr(b'\\', body).is_none() {
        out.extend_from_slice(body);
        return Ok(true);
    }
    let start = out.len();
    let mut i = 0;
    let hex = |j: usize| -> u32 { u32::from_str_radix(std::str::from_utf8(&body[j..j + 4]).unwrap(), 16).unwrap() };
    while i < body.len() {
        let Some(p) = memchr::memchr(b'\\', &body[i..]) else {
            out.extend_from_slice(&body[i..]);
            break;
        };
        out.extend_from_slice(&body[i..i + p]);
        i += p + 1;
        let c = body[i];
        i += 1;
        let ch: Option<char> = match c {
            b'"' => Some('"'),
            b'\\' => Some('\\'),
            b'/' => Some('/'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'u' => {
                let u = hex(i);
                i += 4;
                if (0xD800..0xDC00).contains(&u)
                    && body.len() >= i + 6
                    && body[i] == b'\\'
                    && body[i + 1] == b'u'
                    && (0xDC00..0xE000).contains(&hex(i + 2))
                {
                    let lo = hex(i + 2);
                    i += 6;
                    char::from_u32(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00))
                } else {
                    char::from_u32(u) // None for a lone surrogate
                }
            }
            _ => unreachable!("serde_json validated the escapes"),
        };
        match ch {
            Some(ch) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            None => match policy {
                Utf8Policy::Replace => out.extend_from_slice("\u{FFFD}".as_bytes()),
                Utf8Policy::Skip => {
                    out.truncate(start);
                    return Ok(false);
                }
                Utf8Policy::Error => {
                    let at = std::str::from_utf8(&out[start..]).map(|s| s.chars().count()).unwrap_or(0);
                    out.truncate(start);
                    return Err(corpus_err(
                        where_,
                        format!(
                            "text has a lone surrogate at character {at}, which is not valid UTF-8; \
                             pass --on-invalid-utf8 replace|skip"
                        ),
                    ));
                }
            },
        }
    }
    Ok(true)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
}

/// The value of a number field from its raw JSON text (`None` = the field is missing).
fn number_of(raw: Option<&[u8]>) -> (u8, f64) {
    let Some(v) = raw else { return (kind::MISSING, f64::NAN) };
    match v.first() {
        Some(b'n') => (kind::NULL, f64::NAN),
        Some(b't') => (kind::BOOL, 1.0),
        Some(b'f') => (kind::BOOL, 0.0),
        Some(b'"') => (kind::STRING, f64::NAN),
        Some(b'[') => (kind::ARRAY, f64::NAN),
        Some(b'{') => (kind::OBJECT, f64::NAN),
        _ => {
            // a validated JSON number; an integer is exact in Python (`-0` is 0), then float()
            let s = std::str::from_utf8(v).unwrap_or("nan");
            let x: f64 = s.parse().unwrap_or(f64::NAN);
            let integer = !v.iter().any(|c| matches!(c, b'.' | b'e' | b'E'));
            (kind::NUMBER, if integer && x == 0.0 { 0.0 } else { x })
        }
    }
}

/// Top-level keys the fast scan looks for: the text field, then the id field, then the
/// number fields.
struct Wanted<'o> {
    keys: Vec<&'o [u8]>,
    slots: Vec<Option<(usize, usize)>>,
}

impl<'o> Wanted<'o> {
    fn new(opts: &'o Options) -> Self {
        let mut keys = vec![opts.text_field.as_bytes()];
        keys.extend(opts.id_field.iter().map(|f| f.as_bytes()));
        keys.extend(opts.number_fields.iter().map(|f| f.as_bytes()));
        let slots = vec![None; keys.len()];
        Wanted { keys, slots }
    }
}

/// Parse the lines of `buf` (whole lines; the last may lack its newline). `first_line` is the
/// 1-based number of its first line, `base` its byte offset in the decompressed file.
pub fn parse_chunk(buf: &[u8], first_line: u64, base: u64, opts: &Options) -> Result<Batch> {
    parse_lines(buf, first_line, base, opts, true).map(|r| r.0)
}

/// [`parse_chunk`] without the fast scan: every line through serde_json (the reference the
/// fast path is tested against).
#[doc(hidden)]
pub fn parse_chunk_reference(buf: &[u8], first_line: u64, base: u64, opts: &Options) -> Result<Batch> {
    parse_lines(buf, first_line, base, opts, false).map(|r| r.0)
}

/// [`parse_chunk`], also returning the number of lines of `buf` (with `fast`, the fast scan
/// first).
fn parse_lines(buf: &[u8], first_line: u64, base: u64, opts: &Options, fast: bool) -> Result<(Batch, u64)> {
    let mut batch = Batch::new(opts.number_fields.len());
    // the text is never longer than the lines it comes from (+80: the scan's block stores);
    // on huge pages, the fresh buffer costs a few page faults instead of one per 4 KiB
    batch.text.reserve(buf.len() + 80);
    crate::mem::advise_huge(batch.text.as_ptr(), batch.text.capacity(), crate::mem::MADV_HUGEPAGE);
    let mut wanted = Wanted::new(opts);
    let mut lineno = first_line;
    let mut pos = 0usize;
    while pos < buf.len() {
        let start = batch.text.len();
        let end = match fast.then(|| fast_line(buf, pos, opts, &mut wanted, &mut batch)).flatten() {
            Some(end) => end,
            None => {
                batch.text.truncate(start);
                let end = memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |p| pos + p);
                let line = &buf[pos..end];
                if is_blank(line) {
                    lineno += 1;
                    pos = end + 1;
                    continue; // blank lines are not records (documented)
                }
                slow_line(line, lineno, opts, &mut batch)?;
                end
            }
        };
        batch.text_offsets.push(batch.text.len() as i64);
        batch.lines.push(lineno);
        batch.starts.push(base + pos as u64);
        batch.ends.push(base + end as u64);
        lineno += 1;
        pos = end + 1;
    }
    Ok((batch, lineno - first_line))
}

/// The fast path: one scan of the line starting at `buf[pos]` (see `scan.rs`); returns where
/// it ends. `None` = the line needs serde_json (nothing of it was added to `batch` but text
/// bytes, which the caller truncates).
#[inline]
fn fast_line(buf: &[u8], pos: usize, opts: &Options, w: &mut Wanted, batch: &mut Batch) -> Option<usize> {
    let rest = &buf[pos..];
    let mut sc = Scanner::new(rest);
    let end = sc.object(&w.keys, &mut w.slots, &mut batch.text)?;
    let line = &rest[..end];
    if sc.non_ascii && std::str::from_utf8(line).is_err() {
        return None;
    }
    match w.slots[0] {
        Some((a, _)) if line[a] == b'"' => {}
        _ => return None, // missing or not a string: serde_json's path words the error
    }
    let mut k = 1;
    if opts.id_field.is_some() {
        let (a, b) = w.slots[1]?;
        let v = &line[a..b];
        if v == b"null" || (v[0] == b'"' && memchr::memchr(b'\\', v).is_some()) {
            return None;
        }
        if v[0] == b'"' {
            batch.ids.extend_from_slice(&v[1..v.len() - 1]);
            batch.id_is_json.push(false);
        } else {
            batch.ids.extend_from_slice(v);
            batch.id_is_json.push(true);
        }
        batch.id_offsets.push(batch.ids.len() as i64);
        k = 2;
    }
    for (j, slot) in w.slots[k..].iter().enumerate() {
        let (kd, x) = number_of(slot.map(|(a, b)| &line[a..b]));
        batch.number_kinds[j].push(kd);
        batch.numbers[j].push(x);
    }
    batch.valid.push(true);
    Some(pos + end)
}

/// The reference path: serde_json parses the line (exact errors, every edge case).
fn slow_line(line: &[u8], lineno: u64, opts: &Options, batch: &mut Batch) -> Result<()> {
    let where_ = format!("{}:{}", opts.display, lineno);
    let mut skip = false;
    let text: Cow<str> = match std::str::from_utf8(line) {
        Ok(s) => Cow::Borrowed(s),
        Err(e) => match opts.policy {
            Utf8Policy::Error => {
                let at = e.valid_up_to();
                return Err(corpus_err(
                    &where_,
                    format!(
                        "invalid UTF-8 at byte {at} ({}); fix the file or pass --on-invalid-utf8 replace|skip",
                        py_bytes_repr(&line[at..line.len().min(at + 4)])
                    ),
                ));
            }
            Utf8Policy::Replace => String::from_utf8_lossy(line),
            Utf8Policy::Skip => {
                skip = true;
                String::from_utf8_lossy(line)
            }
        },
    };
    let text: &str = &text;
    let first = text.trim_start_matches([' ', '\t', '\n', '\r']).as_bytes().first().copied();
    if first != Some(b'{') {
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
            Err(e) => json_error(&where_, text, e),
            Ok(_) => corpus_err(&where_, format!("expected a JSON object per line, got {}", json_type(text))),
        });
    }
    let obj: Obj = serde_json::from_str(text).map_err(|e| json_error(&where_, text, e))?;
    // id
    match &opts.id_field {
        None => {}
        Some(f) => match obj.0.iter().find(|(k, _)| k == f) {
            None => return Err(corpus_err(&where_, format!("missing id field {}", py_repr(f)))),
            Some((_, v)) if v.get() == "null" => {
                return Err(corpus_err(&where_, format!("missing id field {}", py_repr(f))))
            }
            Some((_, v)) if v.get().starts_with('"') => {
                let s: Cow<str> = serde_json::from_str(v.get()).map_err(|e| json_error(&where_, text, e))?;
                batch.ids.extend_from_slice(s.as_bytes());
                batch.id_is_json.push(false);
            }
            Some((_, v)) => {
                batch.ids.extend_from_slice(v.get().as_bytes());
                batch.id_is_json.push(true);
            }
        },
    }
    let tf = &opts.text_field;
    let mut valid = !skip;
    if !skip {
        match obj.0.iter().find(|(k, _)| k == tf) {
            None => {
                let names: Vec<&str> = obj.0.iter().take(10).map(|(k, _)| k.as_str()).collect();
                let fields = if names.is_empty() { "none".to_string() } else { names.join(", ") };
                return Err(corpus_err(
                    &where_,
                    format!(
                        "missing field {} (fields present: {fields}); choose the text field with --text-field",
                        py_repr(tf)
                    ),
                ));
            }
            Some((_, v)) if !v.get().starts_with('"') => {
                return Err(corpus_err(
                    &where_,
                    format!("field {} is {}, expected a string", py_repr(tf), json_type(v.get())),
                ))
            }
            Some((_, v)) => valid = unescape_into(v.get(), &mut batch.text, opts.policy, &where_)?,
        }
    }
    if opts.id_field.is_some() {
        batch.id_offsets.push(batch.ids.len() as i64);
    }
    for (j, f) in opts.number_fields.iter().enumerate() {
        let raw = obj.0.iter().find(|(k, _)| k == f).map(|(_, v)| v.get().as_bytes());
        let (kd, x) = number_of(raw);
        batch.number_kinds[j].push(kd);
        batch.numbers[j].push(x);
    }
    batch.valid.push(valid);
    Ok(())
}

/// Size of one read of decompressed input (the Python reader's chunk, so a corrupt stream is
/// reported after the same line).
pub const READ_CHUNK: usize = 8 << 20;

fn open(path: &str, compression: Compression) -> Result<Box<dyn Read + Send>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(match compression {
        Compression::None => Box::new(f),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(f).map_err(|e| Error::io(path, e))?),
    })
}

/// Read up to `READ_CHUNK` bytes into `buf[len..]` (growing `buf` if needed, never shrinking
/// it: a reused buffer is not zeroed again). Returns the bytes read, 0 at end of input.
fn fill(r: &mut dyn Read, buf: &mut Vec<u8>, len: usize) -> std::io::Result<usize> {
    if buf.len() < len + READ_CHUNK {
        buf.resize(len + READ_CHUNK, 0);
    }
    let mut n = len;
    while n < len + READ_CHUNK {
        match r.read(&mut buf[n..len + READ_CHUNK]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n - len)
}

/// Whole lines of the file: `buf[..len]` and its byte offset.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
    base: u64,
}

/// Read a whole JSONL file, calling `sink` with batches of at least `batch_docs` documents
/// (the last may be smaller), in file order. Chunks are parsed in parallel; memory stays
/// bounded by roughly `threads * READ_CHUNK` plus one batch.
pub fn read_jsonl(
    path: &str,
    compression: Compression,
    opts: &Options,
    batch_docs: usize,
    mut sink: impl FnMut(Batch) -> Result<()>,
) -> Result<()> {
    if compression == Compression::None {
        return read_mapped(path, opts, batch_docs, sink);
    }
    let mut r = open(path, compression).map_err(|e| match e {
        Error::Io { source, .. } => corpus_err(&opts.display, format!("cannot open: {source}")),
        e => e,
    })?;
    let par = rayon::current_num_threads().max(1);
    let nf = opts.number_fields.len();
    let mut pool: Vec<Vec<u8>> = Vec::new(); // buffers parsed before, reused without zeroing
    let mut cur: Vec<u8> = Vec::new(); // the bytes read but not yet in a chunk: cur[..cur_len]
    let mut cur_len = 0usize;
    let mut lines_done: u64 = 0; // lines of the chunks parsed so far
    let mut offset: u64 = 0; // decompressed byte offset of `cur`'s start
    let mut pending = Batch::new(nf);
    let mut eof = false;
    while !eof {
        // gather up to `par` chunks of whole lines
        let mut chunks: Vec<Chunk> = Vec::new();
        while chunks.len() < par && !eof {
            let had = cur_len;
            match fill(&mut *r, &mut cur, cur_len) {
                Err(e) => {
                    // lines of the chunks read this round (counted only now: rare)
                    let n: u64 = chunks.iter().map(|c| memchr::memchr_iter(b'\n', &c.buf[..c.len]).count() as u64).sum();
                    return Err(corpus_err(
                        &opts.display,
                        format!("the compressed stream is corrupt or truncated after line {}: {e}", lines_done + n),
                    ));
                }
                Ok(0) => {
                    eof = true;
                    if had > 0 {
                        chunks.push(Chunk { buf: std::mem::take(&mut cur), len: had, base: offset });
                    }
                }
                Ok(k) => {
                    cur_len += k;
                    let cut = memchr::memrchr(b'\n', &cur[..cur_len]).map_or(0, |p| p + 1);
                    if cut == 0 {
                        continue; // no whole line yet: read on into the same buffer
                    }
                    // the partial last line starts the next buffer
                    let rest = cur_len - cut;
                    let mut next = pool.pop().unwrap_or_default();
                    if next.len() < rest + READ_CHUNK {
                        next.resize(rest + READ_CHUNK, 0);
                    }
                    next[..rest].copy_from_slice(&cur[cut..cur_len]);
                    chunks.push(Chunk { buf: std::mem::replace(&mut cur, next), len: cut, base: offset });
                    cur_len = rest;
                    offset += cut as u64;
                }
            }
        }
        let pieces: Vec<(&[u8], u64)> = chunks.iter().map(|c| (&c.buf[..c.len], c.base)).collect();
        let results = parse_group(&pieces, &mut lines_done, opts)?;
        pool.extend(chunks.into_iter().map(|c| c.buf));
        pool.truncate(par + 1);
        emit(results, &mut pending, batch_docs, &mut sink)?;
    }
    if !pending.is_empty() {
        sink(pending)?;
    }
    Ok(())
}

/// Parse chunks of whole lines in parallel. They are parsed with line numbers from 1 and
/// renumbered in order after (a chunk's first line is known only once the chunks before it
/// are counted); an error is found again with the real line numbers.
fn parse_group(pieces: &[(&[u8], u64)], lines_done: &mut u64, opts: &Options) -> Result<Vec<Batch>> {
    let parsed: Vec<Result<(Batch, u64)>> =
        pieces.par_iter().map(|&(buf, base)| parse_lines(buf, 1, base, opts, true)).collect();
    let mut results = Vec::with_capacity(parsed.len());
    for (&(buf, base), r) in pieces.iter().zip(parsed) {
        match r {
            Ok((mut b, n)) => {
                b.lines.iter_mut().for_each(|l| *l += *lines_done);
                *lines_done += n;
                results.push(b);
            }
            Err(_) => {
                parse_lines(buf, *lines_done + 1, base, opts, true)?;
                unreachable!("a chunk parses the same way twice");
            }
        }
    }
    Ok(results)
}

/// Hand parsed batches to `sink` in batches of at least `batch_docs` documents.
fn emit(
    results: Vec<Batch>,
    pending: &mut Batch,
    batch_docs: usize,
    sink: &mut impl FnMut(Batch) -> Result<()>,
) -> Result<()> {
    let nf = pending.numbers.len();
    for b in results {
        if pending.is_empty() {
            *pending = b;
        } else {
            pending.append(b);
        }
        if pending.len() >= batch_docs {
            sink(std::mem::replace(pending, Batch::new(nf)))?;
        }
    }
    Ok(())
}

/// [`read_jsonl`] of a plain file: memory-mapped, chunks are slices of the map (no copy into
/// read buffers). Like any memory map, a file truncated by another process while it is read
/// ends the process (SIGBUS).
fn read_mapped(path: &str, opts: &Options, batch_docs: usize, mut sink: impl FnMut(Batch) -> Result<()>) -> Result<()> {
    let cannot_open = |e: std::io::Error| corpus_err(&opts.display, format!("cannot open: {e}"));
    let f = File::open(path).map_err(cannot_open)?;
    if f.metadata().map_err(cannot_open)?.len() == 0 {
        return Ok(());
    }
    // SAFETY: the map is only read; see above for a file changed while mapped
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(cannot_open)?;
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Sequential);
    let data: &[u8] = &map;
    let par = rayon::current_num_threads().max(1);
    let mut pending = Batch::new(opts.number_fields.len());
    let mut lines_done = 0u64;
    let mut pos = 0usize;
    while pos < data.len() {
        let mut pieces: Vec<(&[u8], u64)> = Vec::with_capacity(par);
        while pieces.len() < par && pos < data.len() {
            let mut end = (pos + READ_CHUNK).min(data.len());
            if end < data.len() {
                end = memchr::memchr(b'\n', &data[end..]).map_or(data.len(), |p| end + p + 1);
            }
            pieces.push((&data[pos..end], pos as u64));
            pos = end;
        }
        let results = parse_group(&pieces, &mut lines_done, opts)?;
        emit(results, &mut pending, batch_docs, &mut sink)?;
    }
    if !pending.is_empty() {
        sink(pending)?;
    }
    Ok(())
}
