//! The customer's address book over GraphQL: `addresses`, `addAddress`,
//! `updateAddress`, `deleteAddress`. Rules live in `entity::addresses`;
//! this is the adapter. Every field needs a signed-in customer and sees only
//! their own addresses.
pub mod graphql;

pub use graphql::{AddressInput, AddressesMutation, AddressesQuery, OrderAddress};
