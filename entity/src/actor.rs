//! Who is asking: the authenticated user a rule acts for. Ownership is
//! enforced with it inside the queries themselves, so a customer can never
//! read or change another customer's data whatever id it guesses.
use crate::ids::UserId;

use crate::accounts::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub user_id: UserId,
    pub role: Role,
}

impl Actor {
    /// The shop itself, acting on a schedule (expiring unpaid orders).
    #[must_use]
    pub fn system() -> Self {
        Self {
            user_id: UserId(uuid::Uuid::nil()),
            role: Role::Admin,
        }
    }

    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}
