//! `--shard I/N`: split one batch over N independent workers (a Slurm job array, a Kubernetes
//! indexed Job) without coordination. A file belongs to shard `fnv1a64(path) % N`, where `path` is
//! its path relative to the input folder, with `/` separators, as UTF-8 bytes.
//!
//! FNV-1a 64 is used because it is specified (and pinned by the test vectors below), not
//! randomised per process like std's `DefaultHasher`, so every worker on every machine and every
//! later run agrees on who owns which file. Hashing the path rather than the position in the
//! listing keeps a file in the same shard when other files are added or removed.
//!
//! `I` counts from 0 (`0/4` … `3/4`), the way `SLURM_ARRAY_TASK_ID` (for `--array=0-3`) and
//! Kubernetes' `JOB_COMPLETION_INDEX` do, so `--shard $JOB_COMPLETION_INDEX/4` works as is.

use std::fmt;
use std::hash::Hasher;

use crate::{Error, Result};

/// One of `count` disjoint parts of the file set; `index` is in `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// A shard, refusing `count == 0` and `index >= count` with a message naming the bound.
    pub fn new(index: u64, count: u64) -> Result<Shard> {
        let value = format!("{index}/{count}");
        if count == 0 {
            return Err(invalid(
                value,
                "the shard count N must be at least 1".into(),
            ));
        }
        if index >= count {
            let bound = count - 1;
            return Err(invalid(
                value,
                format!("the index I counts from 0 and must be at most N-1 = {bound}"),
            ));
        }
        Ok(Shard { index, count })
    }

    /// Parses `I/N`, e.g. `0/4`.
    pub fn parse(value: &str) -> Result<Shard> {
        let expected = "I/N with whole numbers, I counting from 0, e.g. 0/4";
        let Some((index, count)) = value.trim().split_once('/') else {
            return Err(invalid(value.to_string(), expected.into()));
        };
        let number = |part: &str| part.trim().parse::<u64>().ok();
        match (number(index), number(count)) {
            (Some(index), Some(count)) => Shard::new(index, count),
            _ => Err(invalid(value.to_string(), expected.into())),
        }
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether the file at `relative_path` (relative to the input folder, `/`-separated) is
    /// this shard's to process.
    pub fn contains(&self, relative_path: &str) -> bool {
        path_hash(relative_path) % self.count == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a 64 of the path's UTF-8 bytes: the stable hash that assigns files to shards.
pub fn path_hash(relative_path: &str) -> u64 {
    fnv1a64(relative_path.as_bytes())
}

/// FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) of `bytes`, as the `fnv`
/// crate computes it when fed through `Hasher::write` alone.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

fn invalid(value: String, expected: String) -> Error {
    Error::InvalidOption {
        option: "shard",
        value,
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        // From the FNV reference test suite (isthe.com/chongo/src/fnv/test_fnv.c).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn parses_zero_based_index() {
        let shard = Shard::parse("0/4").expect("valid");
        assert_eq!((shard.index(), shard.count()), (0, 4));
        assert_eq!(Shard::parse(" 3/4 ").expect("valid").to_string(), "3/4");
        assert_eq!(Shard::parse("0/1").expect("valid").count(), 1);
    }

    #[test]
    fn errors_name_the_option_the_bound_and_the_value() {
        let message = |value: &str| Shard::parse(value).expect_err(value).to_string();
        assert_eq!(
            message("4/4"),
            "invalid value for shard: 4/4 \
             (the index I counts from 0 and must be at most N-1 = 3)"
        );
        assert_eq!(
            message("0/0"),
            "invalid value for shard: 0/0 (the shard count N must be at least 1)"
        );
        for bad in ["3", "a/4", "1/-4", "1/4/5", "", "-1/4"] {
            let text = message(bad);
            assert!(text.starts_with("invalid value for shard"), "{text}");
            assert!(text.contains("I counting from 0"), "{text}");
        }
    }

    #[test]
    fn each_path_is_in_exactly_one_shard_on_a_fixed_set() {
        let paths: Vec<String> = (0..500)
            .map(|i| format!("dir{}/article-{i}.txt", i % 7))
            .collect();
        let count = 5;
        let mut sizes = vec![0usize; count];
        for path in &paths {
            let owners: Vec<u64> = (0..count as u64)
                .filter(|&i| Shard::new(i, count as u64).expect("valid").contains(path))
                .collect();
            assert_eq!(owners.len(), 1, "{path} is in shards {owners:?}");
            sizes[owners[0] as usize] += 1;
        }
        // A usable split, not everything in one shard.
        assert!(sizes.iter().all(|&n| n > 50), "{sizes:?}");
    }

    proptest! {
        #[test]
        fn shards_partition_any_file_set(
            paths in proptest::collection::vec("[a-zé/._-]{1,30}", 0..60),
            count in 1u64..12,
        ) {
            let shards: Vec<Shard> =
                (0..count).map(|i| Shard::new(i, count).expect("valid")).collect();
            for path in &paths {
                let owners = shards.iter().filter(|s| s.contains(path)).count();
                prop_assert_eq!(owners, 1);
            }
        }
    }
}
