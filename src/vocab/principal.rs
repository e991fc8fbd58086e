//! Who is asking: a principal, as the policy sees it.

use serde::{Deserialize, Serialize};

/// The owner's role, and the key under which what belongs to the owner
/// (memories, reminders) is kept, whichever ID the owner used: at the box
/// or from Matrix, the owner is one principal.
pub const OWNER: &str = "owner";

/// Who is asking: the exact user ID and the role it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub id: String,
    pub role: String,
}

impl Principal {
    pub(crate) fn is_owner(&self) -> bool {
        self.role == OWNER
    }

    /// The owner at the box's own terminal (`hermit chat`, the control
    /// socket): the Unix user who owns the data directory.
    pub(crate) fn local_owner(owner_id: &str) -> Self {
        Self {
            id: owner_id.to_string(),
            role: OWNER.into(),
        }
    }
}
