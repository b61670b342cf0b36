//! The queue layer against real backends: Redis at `REDIS_URL` (each test in
//! its own key namespace, or a private `redis-server` when the test stops
//! Redis or counts its commands) and a fresh SQLite file per test.
//!
//! Layout: `completion` (the completer's batches), `delivery` (once each,
//! shared load, re-push, panics), `depth`,
//! `shutdown` (deadline, acks), `crash` (SIGKILLed consumer process),
//! `redis_outage` (restart, idle polling), `sqlite_acks` (an ack's cost
//! does not grow with finished jobs), `unpack_limit` (apalis-redis's
//! 8,000-task trap and our way around it).
mod helpers;

mod completion;
mod crash;
mod delivery;
mod depth;
mod redis_outage;
mod shutdown;
mod sqlite_acks;
mod unpack_limit;
