//! API keys: the configured set, and the file format of `api_key_file`.
//!
//! Owns key matching. Never logs or displays a key (`Debug` shows only how many there are).

use crate::security::Secret;

/// Shortest API key accepted, in bytes.
pub const MIN_API_KEY_BYTES: usize = 16;

/// The keys the API accepts (several at once, for rotation).
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<Secret>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.keys.len())
    }
}

impl ApiKeys {
    /// These keys.
    pub fn new(keys: impl IntoIterator<Item = String>) -> ApiKeys {
        ApiKeys {
            keys: keys.into_iter().map(Secret).collect(),
        }
    }

    /// Adds `keys`.
    pub fn extend(&mut self, keys: impl IntoIterator<Item = Secret>) {
        self.keys.extend(keys);
    }

    /// Whether there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `presented` is one of the keys. Compares every key in time independent of where
    /// the bytes differ, so the answer's timing does not reveal a key's prefix.
    pub fn accepts(&self, presented: &str) -> bool {
        let p = presented.as_bytes();
        let mut found = false;
        for key in &self.keys {
            let k = key.0.as_bytes();
            let mut diff = u8::from(k.len() != p.len());
            for (i, &b) in k.iter().enumerate() {
                diff |= b ^ p.get(i).copied().unwrap_or(0);
            }
            found |= diff == 0;
        }
        found
    }
}

/// Why an API key file cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyFileError {
    /// Holds no key.
    #[error("holds no key")]
    Empty,
    /// Line `n` (from 1) holds a key shorter than [`MIN_API_KEY_BYTES`].
    #[error("the key on line {0} is shorter than {MIN_API_KEY_BYTES} bytes")]
    Short(usize),
}

/// The keys of an `api_key_file`'s text: one per line, blank lines and `#` comments skipped.
pub fn parse_key_file(text: &str) -> Result<Vec<Secret>, KeyFileError> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.len() < MIN_API_KEY_BYTES {
            return Err(KeyFileError::Short(i + 1));
        }
        keys.push(Secret(line.to_owned()));
    }
    if keys.is_empty() {
        return Err(KeyFileError::Empty);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_key_is_accepted_and_nothing_else() {
        let keys = ApiKeys::new([
            "old-key-0123456789".to_owned(),
            "new-key-0123456789".to_owned(),
        ]);
        assert!(keys.accepts("old-key-0123456789"));
        assert!(keys.accepts("new-key-0123456789"));
        assert!(!keys.accepts("new-key-012345678"));
        assert!(!keys.accepts("new-key-01234567890"));
        assert!(!keys.accepts(""));
        assert_eq!(format!("{keys:?}"), "ApiKeys(2 keys)");
    }

    #[test]
    fn a_key_file_lists_one_key_per_line() {
        let keys = parse_key_file("# rotated 2026-12\n\n0123456789abcdef\n  fedcba9876543210  \n")
            .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].0, "fedcba9876543210");
        assert_eq!(parse_key_file("# none\n"), Err(KeyFileError::Empty));
        assert_eq!(
            parse_key_file("0123456789abcdef\nshort\n"),
            Err(KeyFileError::Short(2))
        );
    }
}
