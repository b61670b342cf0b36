//! SeaORM entity definitions, one file per table, mirroring the migration.
//! Nothing here is hand-tuned: the rules that change these rows live in the
//! domain modules (`accounts`, `catalog`, `orders`, `payments`, `outbox`).
pub mod addresses;
pub mod cart_lines;
pub mod carts;
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
pub mod product_variants;
pub mod products;
pub mod refresh_tokens;
pub mod refund_lines;
pub mod refunds;
pub mod shipping_methods;
pub mod shipping_zone_countries;
pub mod shipping_zones;
pub mod shop_settings;
pub mod stock_movements;
pub mod tax_rates;
pub mod users;
pub mod worker_heartbeats;
