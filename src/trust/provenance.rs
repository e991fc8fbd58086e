//! Provenance: where each piece of text in a conversation came from. The
//! types are part of the vocabulary ([`crate::vocab::origin`]); this is
//! where the trust layer names them.

pub use crate::vocab::origin::{Origin, fence};
