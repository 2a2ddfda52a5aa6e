//! The durable per-identity FIFO. (Being built: see issue 3.)

use anyhow::Result;
use serde::Serialize;

use crate::paths::Root;
use crate::peer::Identity;

/// Queue depth by stage, as `status` shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pending: usize,
    pub running: usize,
    pub dead: usize,
}

/// Count `id`'s tasks by stage (a missing queue counts as empty).
pub fn counts(root: &Root, id: &Identity) -> Result<Counts> {
    let _ = (root, id);
    Ok(Counts::default())
}
