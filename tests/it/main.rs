//! muxvisor's integration tests: the real binary against real tmux, each test
//! on private sockets under its own short temp root. One binary, one module
//! per area. Shared fixture: [`Env`].

mod fixture;

mod agents;
mod canary;
mod clean;
mod conformance;
mod docs;
mod doctor;
mod drain;
mod environment;
mod events;
mod fleet;
mod hostile;
mod lifecycle;
mod notify;
mod operations;
mod peers;
mod pools;
mod queue;
mod readme;
mod send;
mod service;
mod smoke;
mod status;
mod supervise;
mod view;
mod workers;
