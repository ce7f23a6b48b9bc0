//! placeholder
pub struct SuffixIndex;
pub struct IndexInfo;
