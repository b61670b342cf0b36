//! async-graphql's validation of a document, asked without running it, and
//! the schema's registry for the cost model.
//!
//! The schema that serves requests has no extensions: with any, async-graphql
//! resolves every field through the extension chain (a boxed future per
//! extension per field; bench/README.md measures it). Yet async-graphql
//! validates only inside `execute`, and gives its registry (the cost model
//! walks it) only to extensions. So a second instance of the same schema,
//! built with the same switches and no data, carries the one extension
//! that needs neither: it stops every request once it is validated, so
//! nothing of a document ever runs on it. It answers the rare question
//! "valid or not?" (`cost` asks when a client's bucket refuses, to tell an
//! invalid document from a throttled one) and gave its registry once, at
//! build.
use std::sync::{Arc, OnceLock};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextValidation};
use async_graphql::registry::Registry;
use async_graphql::{Request, SchemaEnv, ServerError, ValidationResult};

use crate::schema::{AppSchema, SchemaLimits};

/// The answer of [`Validator`]'s schema to a valid document (never sent).
const VALID: &str = "valid: stopped before it runs";

/// The schema's validation, apart from the schema that runs documents.
pub struct Validator {
    schema: AppSchema,
    env: SchemaEnv,
}

impl Validator {
    /// The validator of the schema `limits` switches (introspection,
    /// suggestions: validation messages depend on them).
    ///
    /// # Errors
    /// When async-graphql did not hand its registry to the extension (it
    /// does for every request it validates).
    pub async fn new(limits: SchemaLimits) -> anyhow::Result<Self> {
        let env = Arc::new(OnceLock::new());
        let schema = crate::schema::finish(
            crate::schema::builder().extension(StopAfterValidation(Arc::clone(&env))),
            limits,
        );
        // One document validated hands the registry over.
        schema.execute("{ __typename }").await;
        let env = env
            .get()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("async-graphql validated no document"))?;
        Ok(Self { schema, env })
    }

    /// The schema's types and fields.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.env.registry
    }

    /// Validates `request` (its parsed document, if set) as the serving
    /// schema would, running nothing.
    ///
    /// # Errors
    /// The request errors the serving schema would answer.
    pub async fn validate(&self, request: Request) -> Result<(), Vec<ServerError>> {
        let response = self.schema.execute(request).await;
        match response.errors.as_slice() {
            [only] if only.message == VALID && only.path.is_empty() => Ok(()),
            _ => Err(response.errors),
        }
    }
}

/// Keeps the registry, and ends each request once it is validated.
struct StopAfterValidation(Arc<OnceLock<SchemaEnv>>);

impl ExtensionFactory for StopAfterValidation {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(StopAfterValidation(Arc::clone(&self.0)))
    }
}

#[async_trait::async_trait]
impl Extension for StopAfterValidation {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        self.0.get_or_init(|| ctx.schema_env.clone());
        next.run(ctx).await?;
        Err(vec![ServerError::new(VALID, None)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SchemaLimits {
        SchemaLimits {
            max_depth: 10,
            max_query_cost: 1000,
            cost_bucket: crate::cost::BucketSettings::default(),
            introspection: true,
            suggestions: true,
        }
    }

    #[test]
    fn valid_documents_pass_and_invalid_ones_get_the_schemas_errors() {
        let validator = futures::executor::block_on(Validator::new(limits())).expect("a validator");
        assert!(validator.registry().types.contains_key("Product"));
        let valid =
            futures::executor::block_on(validator.validate(Request::new("{ products { totalCount } }")));
        assert!(valid.is_ok(), "{valid:?}");
        let subscription = "subscription { orderUpdated(id: \"x\") { id } }";
        let valid = futures::executor::block_on(validator.validate(Request::new(subscription)));
        assert!(valid.is_ok(), "a subscription validates too: {valid:?}");
        let invalid =
            futures::executor::block_on(validator.validate(Request::new("{ prodcts { totalCount } }")));
        let errors = invalid.expect_err("an unknown field");
        assert!(errors[0].message.contains("Did you mean"), "{errors:?}");
    }
}
