//! Primary keys are UUID v7: unique without coordination and ordered by
//! creation time, so `ORDER BY id` is also "newest last".
use uuid::Uuid;

#[must_use]
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}
