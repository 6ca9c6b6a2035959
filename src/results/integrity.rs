//! The integrity read-back's verdict: every acknowledged write, read back.

/// Result of reading every acknowledged write back.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Integrity {
    /// Acknowledged writes (or records) checked.
    pub checked: u64,
    /// Acknowledged writes missing or different when read back.
    pub lost_writes: u64,
    /// The first few discrepancies, for diagnosis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// At most this many discrepancies are kept in `details`.
pub const MAX_DETAILS: usize = 10;

impl Integrity {
    /// Adds another part's counts and details (the details capped at `MAX_DETAILS`).
    pub fn absorb(&mut self, other: Integrity) {
        self.checked += other.checked;
        self.lost_writes += other.lost_writes;
        self.details.extend(other.details);
        self.details.truncate(MAX_DETAILS);
    }

    /// Counts one lost write, keeping its description while there is room.
    pub fn lost(&mut self, what: String) {
        self.lost_writes += 1;
        if self.details.len() < MAX_DETAILS {
            self.details.push(what);
        }
    }
}
