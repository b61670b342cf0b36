use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use entity::accounts::{self, DisplayName, Email, Password, Role};
use entity::actor::Actor;
use entity::ids::UserId;
use entity::tables::users;

use crate::carts::{self, Cart};
use crate::errors::{GqlResultExt, internal};
use crate::state::AppState;
use crate::throttle::rules::{self, Limit, LoginAttempt};
use crate::{errors, write_txn};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "entity::accounts::Role", name = "Role")]
pub enum RoleView {
    Customer,
    Admin,
}

/// A shop account. Only its owner (or an admin) ever sees it.
#[derive(SimpleObject)]
#[graphql(name = "User", complex)]
pub struct UserView {
    #[graphql(skip)]
    user_id: UserId,
    id: ID,
    email: String,
    name: String,
    role: RoleView,
}

impl From<users::Model> for UserView {
    fn from(user: users::Model) -> Self {
        Self {
            user_id: user.id,
            id: ID(user.id.to_string()),
            email: user.email,
            name: user.name,
            role: user.role.into(),
        }
    }
}

#[ComplexObject]
impl UserView {
    /// Your cart; null when you have none, or when this is not you.
    async fn cart(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Cart>> {
        match crate::auth::optional_user(ctx)? {
            Some(actor) if actor.user_id == self.user_id => carts::customer_cart(ctx, self.user_id).await,
            _ => Ok(None),
        }
    }
}

/// What signing in returns: a 15-minute access token for
/// `Authorization: Bearer …` and a single-use refresh token.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AuthPayload {
    access_token: String,
    refresh_token: String,
    user: UserView,
}

#[ComplexObject]
impl AuthPayload {
    /// The customer's cart, after the guest cart named by `cartId` (if any)
    /// was merged into it; null when they have none.
    async fn cart(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Cart>> {
        carts::customer_cart(ctx, self.user.user_id).await
    }
}

#[derive(InputObject)]
pub struct RegisterInput {
    email: String,
    /// At least 10 characters.
    password: String,
    name: String,
    /// A guest cart's id: its lines become the new customer's cart.
    cart_id: Option<ID>,
}

#[derive(InputObject)]
pub struct LoginInput {
    email: String,
    password: String,
    /// A guest cart's id: its lines are merged into the customer's cart
    /// (quantities summed); an id that names no guest cart is ignored.
    cart_id: Option<ID>,
}

/// Issues both tokens for `user` (the refresh token inside `conn`'s transaction).
async fn signed_in(
    ctx: &Context<'_>,
    user: users::Model,
    refresh_token: String,
) -> async_graphql::Result<AuthPayload> {
    let state = ctx.data::<AppState>()?;
    let access_token = state
        .tokens
        .issue(
            Actor {
                user_id: user.id,
                role: user.role,
            },
            user.token_version,
        )
        .map_err(|e| internal(&e, errors::request_id(ctx)))?;
    Ok(AuthPayload {
        access_token,
        refresh_token,
        user: user.into(),
    })
}

#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// The signed-in user; null when anonymous.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserView>> {
        let Some(actor) = crate::auth::optional_user(ctx)? else {
            return Ok(None);
        };
        let state = ctx.data::<AppState>()?;
        Ok(
            crate::transaction::read(|| accounts::find_user(&state.db, actor.user_id))
                .await
                .or_gql(ctx)?
                .map(Into::into),
        )
    }
}

#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    /// Creates a customer account and signs it in; sends a welcome email.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> async_graphql::Result<AuthPayload> {
        let ip = rules::client_subject(ctx);
        rules::take(ctx, &[(Limit::RegisterIp, &ip)]).await?;
        let email = Email::parse(&input.email).or_gql(ctx)?;
        rules::take(ctx, &[(Limit::RegisterEmail, email.as_str())]).await?;
        let password = Password::parse(&input.password).or_gql(ctx)?;
        let name = DisplayName::parse(&input.name).or_gql(ctx)?;
        // argon2 before the transaction: it must not hold the write lock.
        let password_hash = password.hash().await.or_gql(ctx)?;
        let request_id = Some(errors::request_id(ctx).to_owned());
        let cart = carts::guest_token(input.cart_id.as_ref());
        let (user, refresh) = write_txn(ctx, |txn| {
            // Cloned per attempt: a transaction that lost its connection runs again.
            let (email, password_hash, name) = (email.clone(), password_hash.clone(), name.clone());
            let (request_id, cart) = (request_id.clone(), cart.clone());
            Box::pin(async move {
                let user =
                    accounts::register(txn, &email, password_hash, &name, Role::Customer, request_id).await?;
                carts::merge_guest_cart(txn, cart, user.id).await?;
                let refresh = accounts::issue_refresh_token(txn, user.id).await?;
                Ok((user, refresh))
            })
        })
        .await?;
        crate::jobs_written(ctx);
        signed_in(ctx, user, refresh).await
    }

    /// Signs in with email and password.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> async_graphql::Result<AuthPayload> {
        let email = Email::parse(&input.email).or_gql(ctx)?;
        let attempt = LoginAttempt::begin(ctx, &email).await?;
        let state = ctx.data::<AppState>()?;
        // Outside any transaction: argon2 is slow and must not hold a write lock.
        let user = accounts::authenticate(&state.db, &email, &input.password).await;
        attempt.finish(ctx, &user).await;
        let user = user.or_gql(ctx)?;
        if let Some(cart) = carts::guest_token(input.cart_id.as_ref()) {
            let user_id = user.id;
            write_txn(ctx, |txn| {
                Box::pin(carts::merge_guest_cart(txn, Some(cart.clone()), user_id))
            })
            .await?;
        }
        let refresh = accounts::issue_refresh_token(&state.db, user.id)
            .await
            .or_gql(ctx)?;
        signed_in(ctx, user, refresh).await
    }

    /// Trades a refresh token for new tokens; the old refresh token stops working.
    /// Presenting a used token again revokes all of the account's refresh tokens.
    async fn refresh_token(&self, ctx: &Context<'_>, token: String) -> async_graphql::Result<AuthPayload> {
        let state = ctx.data::<AppState>()?;
        // On the pool, not in a transaction: the theft revocation must stick
        // even though the call then fails.
        let (user, refresh) = accounts::rotate_refresh_token(&state.db, &token)
            .await
            .or_gql(ctx)?;
        signed_in(ctx, user, refresh).await
    }

    /// Signs out everywhere: every refresh token of yours is revoked and
    /// every access token stops working (within seconds on every api
    /// instance). True when it is done.
    async fn logout_everywhere(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let actor = crate::auth::require_user(ctx)?;
        let state = ctx.data::<AppState>()?;
        accounts::end_all_sessions(&state.db, actor.user_id)
            .await
            .or_gql(ctx)?;
        state.sessions.forget(actor.user_id);
        Ok(true)
    }

    /// Revokes a refresh token. True when it was live.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> async_graphql::Result<bool> {
        write_txn(ctx, |txn| {
            let refresh_token = refresh_token.clone();
            Box::pin(async move { accounts::revoke_refresh_token(txn, &refresh_token).await })
        })
        .await
    }

    /// Emails a reset link when the account exists. Always true, so the
    /// answer does not reveal which emails have accounts.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> async_graphql::Result<bool> {
        let ip = rules::client_subject(ctx);
        rules::take(ctx, &[(Limit::PasswordResetIp, &ip)]).await?;
        let Ok(email) = Email::parse(&email) else {
            return Ok(true);
        };
        rules::take(ctx, &[(Limit::PasswordResetEmail, email.as_str())]).await?;
        let request_id = Some(errors::request_id(ctx).to_owned());
        write_txn(ctx, |txn| {
            let (email, request_id) = (email.clone(), request_id.clone());
            Box::pin(async move { accounts::request_password_reset(txn, &email, request_id).await })
        })
        .await?;
        crate::jobs_written(ctx);
        Ok(true)
    }

    /// Sets a new password with a token from the reset email (single use, 1 hour).
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        new_password: String,
    ) -> async_graphql::Result<bool> {
        let ip = rules::client_subject(ctx);
        rules::take(ctx, &[(Limit::ResetPasswordIp, &ip)]).await?;
        let password = Password::parse(&new_password).or_gql(ctx)?;
        // A bad token costs no argon2 work; argon2 runs before the
        // transaction, which then spends the token for good.
        let state = ctx.data::<AppState>()?;
        let account = accounts::check_reset_token(&state.db, &token).await.or_gql(ctx)?;
        rules::take(ctx, &[(Limit::ResetPasswordAccount, &account.to_string())]).await?;
        let password_hash = password.hash().await.or_gql(ctx)?;
        write_txn(ctx, |txn| {
            let (token, password_hash) = (token.clone(), password_hash.clone());
            Box::pin(async move { accounts::reset_password(txn, &token, password_hash).await })
        })
        .await?;
        Ok(true)
    }
}
