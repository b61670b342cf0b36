//! Email delivery end to end: templates rendered by `worker::notifications`,
//! sent by its `Mailer` to a real SMTP server running inside the test
//! (`mailin-embedded` on 127.0.0.1, a free port per test) or written by the
//! file transport, then parsed back as MIME and checked.
//!
//! Layout:
//! - `helpers`: the embedded SMTP server, its inbox, and MIME parsing;
//! - `smtp`: each of the six emails over SMTP;
//! - `errors`: how SMTP failures are classified (transient or permanent);
//! - `file`: the `.eml` file transport.
mod errors;
mod file;
mod helpers;
mod smtp;
