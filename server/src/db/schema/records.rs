//! The records of tokens and enrollment codes.

use serde::{Deserialize, Serialize};

use super::{decode, encode, ENROLLMENTS};
use crate::db::Result;

/// What the store knows of a token; never the token itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub user_id: String,
    pub label: String,
    pub created_ms: u64,
    /// 0: never expires.
    pub expires_ms: u64,
    pub revoked: bool,
}

/// What the store keeps of an enrollment code; never the code itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// Names the code in lists and revocations.
    pub id: String,
    pub user_id: String,
    pub user_name: String,
    /// Who made it.
    pub created_by: String,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub revoked: bool,
    /// Set once redeemed: the id of the token it became.
    pub token_id: String,
}

impl Enrollment {
    /// Not redeemed, not revoked, not expired.
    pub fn is_open(&self, now_ms: u64) -> bool {
        !self.revoked && self.token_id.is_empty() && now_ms < self.expires_ms
    }

    /// The stored form, versioned.
    pub(in crate::db) fn encode(&self) -> Vec<u8> {
        encode(&StoredEnrollment::V1(self.clone()))
    }

    pub(in crate::db) fn decode(bytes: &[u8]) -> Result<Enrollment> {
        match decode::<StoredEnrollment>(ENROLLMENTS, bytes)? {
            StoredEnrollment::V1(e) => Ok(e),
        }
    }
}

/// The stored form of an [`Enrollment`], versioned so that a later field
/// never breaks reading what is on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum StoredEnrollment {
    V1(Enrollment),
}
