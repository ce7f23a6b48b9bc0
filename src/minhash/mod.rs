//! Near-duplicate detection with MinHash + LSH: shingling, signatures (a fast scheme
//! and datasketch-compatible ones), band keys, candidate groups, connected components,
//! keep policy and cluster report, and a persistent memory-mapped index.

pub mod dist;
pub mod index;
pub mod lsh;
pub mod shingle;
pub mod signature;
pub mod star;

pub use index::{IndexParams, MinHashIndex};
pub use lsh::{optimal_params, SigView};
pub use shingle::{ShingleConfig, Unit};
pub use signature::{signatures, Scheme, Signatures};
pub use star::{keep_order, star_clusters, ClusterMode};
