//! muxvisor's integration tests: the real binary against real tmux, each test
//! on private sockets under its own short temp root. One binary, one module
//! per area. Shared fixture: [`Env`].

mod fixture;

mod canary;
mod hostile;
mod lifecycle;
mod smoke;
mod supervise;
