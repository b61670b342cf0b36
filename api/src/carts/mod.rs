//! Carts over GraphQL: `cartCreate`, `cartLinesAdd`, `cartLinesUpdate`,
//! `cartLinesRemove`, `cart(id:)`, and `User.cart`/`AuthPayload.cart`.
//! Rules live in `entity::carts`; this is the adapter. Guests need no
//! sign-in: a guest cart's id is its secret token. A customer's cart
//! answers only to that customer, signed in; to anyone else it is
//! NOT_FOUND, like a cart that does not exist.
pub mod graphql;

pub use graphql::{Cart, CartsMutation, CartsQuery, cart_key, customer_cart, guest_token, merge_guest_cart};
