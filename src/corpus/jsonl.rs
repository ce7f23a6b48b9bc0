//! JSONL parsing: one pass per line, text into Arrow buffers, same errors as `gristmill.io`.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::Read;

use rayon::prelude::*;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

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
}

impl Batch {
    fn new() -> Self {
        Batch { text_offsets: vec![0], id_offsets: vec![0], ..Default::default() }
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

/// Parse the lines of `buf` (whole lines; the last may lack its newline). `first_line` is the
/// 1-based number of its first line, `base` its byte offset in the decompressed file.
pub fn parse_chunk(buf: &[u8], first_line: u64, base: u64, opts: &Options) -> Result<Batch> {
    let mut batch = Batch::new();
    let mut lineno = first_line;
    let mut pos = 0usize;
    while pos < buf.len() {
        let end = memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |p| pos + p);
        let line = &buf[pos..end];
        parse_line(line, lineno, base + pos as u64, opts, &mut batch)?;
        lineno += 1;
        pos = end + 1;
    }
    Ok(batch)
}

fn parse_line(line: &[u8], lineno: u64, start: u64, opts: &Options, batch: &mut Batch) -> Result<()> {
    if is_blank(line) {
        return Ok(()); // blank lines are not records (documented)
    }
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
    batch.text_offsets.push(batch.text.len() as i64);
    batch.valid.push(valid);
    batch.lines.push(lineno);
    batch.starts.push(start);
    batch.ends.push(start + line.len() as u64);
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

/// Fill `buf` up to `READ_CHUNK` bytes; `Ok(false)` at end of input.
fn fill(r: &mut dyn Read, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let old = buf.len();
    buf.resize(old + READ_CHUNK, 0);
    let mut n = old;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(n);
                return Err(e);
            }
        }
    }
    buf.truncate(n);
    Ok(n > old)
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
    let mut r = open(path, compression).map_err(|e| match e {
        Error::Io { source, .. } => corpus_err(&opts.display, format!("cannot open: {source}")),
        e => e,
    })?;
    let par = rayon::current_num_threads().max(1);
    let mut carry: Vec<u8> = Vec::new();
    let mut lines_done: u64 = 0; // complete lines in fully read chunks
    let mut offset: u64 = 0; // decompressed byte offset of `carry`'s start
    let mut pending = Batch::new();
    let mut eof = false;
    while !eof {
        // gather up to `par` chunks of whole lines
        let mut chunks: Vec<(Vec<u8>, u64, u64)> = Vec::new();
        while chunks.len() < par && !eof {
            let mut buf = std::mem::take(&mut carry);
            let had = buf.len();
            match fill(&mut *r, &mut buf) {
                Err(e) => {
                    return Err(corpus_err(
                        &opts.display,
                        format!("the compressed stream is corrupt or truncated after line {lines_done}: {e}"),
                    ))
                }
                Ok(false) => {
                    eof = true;
                    if had > 0 {
                        chunks.push((buf, lines_done + 1, offset));
                    }
                }
                Ok(true) => {
                    let cut = memchr::memrchr(b'\n', &buf).map_or(0, |p| p + 1);
                    carry = buf[cut..].to_vec();
                    buf.truncate(cut);
                    let n = memchr::memchr_iter(b'\n', &buf).count() as u64;
                    let len = buf.len() as u64;
                    if !buf.is_empty() {
                        chunks.push((buf, lines_done + 1, offset));
                    }
                    lines_done += n;
                    offset += len;
                }
            }
        }
        let parsed: Vec<Result<Batch>> =
            chunks.par_iter().map(|(buf, first, base)| parse_chunk(buf, *first, *base, opts)).collect();
        for b in parsed {
            pending.append(b?);
            if pending.len() >= batch_docs {
                sink(std::mem::replace(&mut pending, Batch::new()))?;
            }
        }
    }
    if !pending.is_empty() {
        sink(pending)?;
    }
    Ok(())
}
