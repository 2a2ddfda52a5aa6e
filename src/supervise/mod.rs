//! The tick (placeholder while the decide table lands).
pub mod decide;
