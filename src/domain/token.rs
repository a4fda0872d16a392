//! Secrets: generation, hashing for storage, and constant-time comparison.

use sha2::{Digest, Sha256};

/// A fresh token with 128 bits of randomness, hex encoded (32 chars).
pub fn generate() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// The form a user token is stored and indexed in: hex SHA-256.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets without leaking where they differ through timing.
pub fn matches(given: &str, stored: &str) -> bool {
    use subtle::ConstantTimeEq;
    given.len() == stored.len() && bool::from(given.as_bytes().ct_eq(stored.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let a = generate();
        assert_eq!(a.len(), 32);
        assert_ne!(a, generate());
    }

    #[test]
    fn hash_is_stable_and_hides_the_token() {
        assert_eq!(hash("t"), hash("t"));
        assert!(!hash("secret").contains("secret"));
        assert_eq!(hash("").len(), 64);
    }

    #[test]
    fn matches_compares_exactly() {
        assert!(matches("abc", "abc"));
        assert!(!matches("abc", "abd"));
        assert!(!matches("abc", "abcd"));
    }
}
