//! What happens to a live agent: looking at its screen and recording what
//! it shows ([`watch`]), typing a message and confirming that it was taken
//! in ([`confirm`]), the courier that empties its mailbox ([`mailbox`]),
//! and starting it again on its conversation ([`resume`]). What an agent's
//! screen means is in `model::agent`.

pub mod confirm;
pub mod mailbox;
pub mod resume;
pub mod watch;
