//! Corpus statistics: cheap facts about a batch of documents.

use rayon::prelude::*;

use super::Docs;

/// Counts over a set of documents. `Add`-able so batches can be combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub docs: u64,
    pub empty_docs: u64,
    pub bytes: u64,
    pub chars: u64,
    pub lines: u64,
    pub words: u64,
    pub max_doc_bytes: u64,
}

impl std::ops::Add for Stats {
    type Output = Stats;
    fn add(self, o: Stats) -> Stats {
        Stats {
            docs: self.docs + o.docs,
            empty_docs: self.empty_docs + o.empty_docs,
            bytes: self.bytes + o.bytes,
            chars: self.chars + o.chars,
            lines: self.lines + o.lines,
            words: self.words + o.words,
            max_doc_bytes: self.max_doc_bytes.max(o.max_doc_bytes),
        }
    }
}

/// Statistics of one document. Words are maximal runs of non-whitespace (ASCII and
/// Unicode whitespace); lines count `\n` plus a final unterminated line.
pub fn doc_stats(doc: &[u8]) -> Stats {
    let text = String::from_utf8_lossy(doc);
    let mut words = 0u64;
    let mut in_word = false;
    let mut chars = 0u64;
    let mut newlines = 0u64;
    for c in text.chars() {
        chars += 1;
        if c == '\n' {
            newlines += 1;
        }
        let ws = c.is_whitespace();
        if !ws && !in_word {
            words += 1;
        }
        in_word = !ws;
    }
    let lines = newlines + u64::from(!doc.is_empty() && !doc.ends_with(b"\n"));
    Stats {
        docs: 1,
        empty_docs: u64::from(doc.is_empty()),
        bytes: doc.len() as u64,
        chars,
        lines,
        words,
        max_doc_bytes: doc.len() as u64,
    }
}

/// Statistics of all documents, computed in parallel (the result does not depend on the
/// number of threads).
pub fn corpus_stats(docs: Docs<'_>) -> Stats {
    (0..docs.len())
        .into_par_iter()
        .with_max_len(crate::par::max_task_len(docs.len(), 64))
        .map(|i| doc_stats(docs.get(i)))
        .reduce(Stats::default, |a, b| a + b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::corpus::OwnedDocs;

    #[test]
    fn counts() {
        let docs: OwnedDocs = ["hello world\nbye", "", "  é中 x \n"].into_iter().collect();
        let s = corpus_stats(docs.view());
        assert_eq!(s.docs, 3);
        assert_eq!(s.empty_docs, 1);
        assert_eq!(s.bytes, 15 + 11);
        assert_eq!(s.words, 3 + 2);
        assert_eq!(s.lines, 2 + 1);
        assert_eq!(s.chars, 15 + 8);
        assert_eq!(s.max_doc_bytes, 15);
    }
}
