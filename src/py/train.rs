//! Bindings for `crate::bpe::trainer`: a `_BpeTrainer` that counts words batch by batch and
//! then trains, returning a `_Tokenizer`. All compute runs detached from the interpreter.

use pyo3::prelude::*;

use super::bpe::PyTokenizer;
use super::DocsArg;
use crate::bpe::trainer::{train, TrainConfig, WordCounter};
use crate::bpe::{Pretokenizer, Tokenizer, Vocab};
use crate::Error;

#[pyclass(module = "gristmill._native", name = "_BpeTrainer")]
struct PyBpeTrainer {
    pretok: Pretokenizer,
    counter: WordCounter,
    pool: Option<rayon::ThreadPool>,
}

impl PyBpeTrainer {
    fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }
}

#[pymethods]
impl PyBpeTrainer {
    /// `_BpeTrainer(pattern, num_threads=None)`: text between regex matches is kept as a
    /// piece (Hugging Face `Split(behavior="isolated")`).
    #[new]
    #[pyo3(signature = (pattern, num_threads=None))]
    fn new(pattern: &str, num_threads: Option<usize>) -> PyResult<Self> {
        let pretok = Pretokenizer::new(pattern)?.keep_gaps(true);
        let pool = match num_threads {
            None => None,
            Some(0) => return Err(Error::invalid_argument("num_threads must be at least 1").into()),
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| Error::invalid_argument(format!("cannot start {n} threads: {e}")))?,
            ),
        };
        Ok(PyBpeTrainer { pretok, counter: WordCounter::new(), pool })
    }

    /// Count the pieces of one batch; `first_doc` numbers its documents in errors.
    #[pyo3(signature = (docs, first_doc=0))]
    fn count(&mut self, py: Python<'_>, docs: DocsArg<'_>, first_doc: u64) -> PyResult<()> {
        let view = docs.view()?;
        let this = &mut *self;
        let (pretok, counter, pool) = (&this.pretok, &mut this.counter, &this.pool);
        py.detach(|| match pool {
            Some(p) => p.install(|| counter.add_docs(&view, pretok, first_doc)),
            None => counter.add_docs(&view, pretok, first_doc),
        })?;
        Ok(())
    }

    /// Add `count` occurrences of one pre-tokenized word (bytes).
    fn add_word(&mut self, word: &[u8], count: u64) {
        self.counter.add_word(word, count);
    }

    /// Distinct words counted so far.
    #[getter]
    fn n_words(&self) -> usize {
        self.counter.len()
    }

    /// `(documents, bytes, pieces)` counted so far.
    #[getter]
    fn totals(&self) -> (u64, u64, u64) {
        self.counter.totals()
    }

    /// Train and return a `_Tokenizer`. `progress(done, wanted)` is called every few hundred
    /// merges (with the interpreter attached); an exception it raises stops training.
    #[pyo3(signature = (vocab_size, min_frequency=0, special_tokens=Vec::new(), max_word_count=None, progress=None))]
    fn train(
        &self,
        py: Python<'_>,
        vocab_size: usize,
        min_frequency: u64,
        special_tokens: Vec<String>,
        max_word_count: Option<usize>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<PyTokenizer> {
        let config = TrainConfig { vocab_size, min_frequency, special_tokens };
        let mut cb_err: Option<PyErr> = None;
        let result = py.detach(|| {
            self.run(|| -> Result<Tokenizer, Error> {
                let words = self.counter.to_sorted(max_word_count);
                let mut last = 0usize;
                let mut report = |done: usize, wanted: usize| -> bool {
                    if !(done >= last + 256 || done == wanted) {
                        return true;
                    }
                    last = done;
                    if let Some(cb) = &progress {
                        Python::attach(|py| {
                            if let Err(e) = cb.call1(py, (done, wanted)) {
                                cb_err = Some(e);
                            }
                        });
                    }
                    cb_err.is_none()
                };
                let trained = train(&words, &config, Some(&mut report))?;
                let vocab = Vocab::from_merges(trained.token_ids(), &trained.merge_bytes(), false)?;
                Tokenizer::new(vocab, self.pretok.clone(), trained.special_tokens)
            })
        });
        if let Some(e) = cb_err {
            return Err(e);
        }
        Ok(PyTokenizer::from_core(result?))
    }
}

/// The GPT-2 byte-level spelling of each token (as in `vocab.json` / `tokenizer.json`).
#[pyfunction]
fn byte_level_strings(tokens: Vec<Vec<u8>>) -> Vec<String> {
    let chars = crate::bpe::vocab::byte_level_chars();
    tokens.iter().map(|t| t.iter().map(|&b| chars[b as usize]).collect()).collect()
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBpeTrainer>()?;
    m.add_function(wrap_pyfunction!(byte_level_strings, m)?)?;
    Ok(())
}
