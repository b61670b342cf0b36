//! SeaORM entity definitions, one file per table, mirroring the migration.
//! Nothing here is hand-tuned: the rules that change these rows live in the
//! domain modules (`accounts`, `catalog`, `orders`, `payments`, `outbox`).
pub mod dead_jobs;
pub mod discount_codes;
pub mod discount_customer_uses;
pub mod discount_redemptions;
pub mod email_deliveries;
pub mod order_lines;
pub mod orders;
pub mod outbox;
pub mod password_resets;
pub mod payments;
pub mod products;
pub mod refresh_tokens;
pub mod stock_movements;
pub mod users;
pub mod worker_heartbeats;
