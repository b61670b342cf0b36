//! The benchmarks' ceiling: a bare async-graphql 7 + actix-web 4 server that
//! answers the api's `products(first:)` and `product(slug:)` shapes from
//! memory — no database, no auth, no limits, no request ids. `bench/api.sh`
//! loads it next to the real api in one run and reports the api's figures as
//! ratios to it (see bench/README.md).
//!
//! It does the per-request work any GraphQL server must do for these queries:
//! parse and validate the document, resolve every field, format the money,
//! encode the cursors, serialise the JSON. The 32 products mirror the demo
//! catalog (`api seed`), sorted by name like the api's default order.
//!
//! `cargo run --release -p api --example bare_graphql -- 127.0.0.1:8088`
//! (the address may also come from `BARE_BIND`; default 127.0.0.1:8088).
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use async_graphql::{EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

/// One product, as the api's `Product` type shows it.
#[derive(Clone)]
struct Product {
    id: uuid::Uuid,
    sku: String,
    slug: String,
    name: String,
    description: String,
    price_minor: i64,
    currency: &'static str,
    stock: i32,
    active: bool,
    created_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
struct Money {
    amount_minor: i64,
    currency: String,
    formatted: String,
}

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    async fn sku(&self) -> &str {
        &self.sku
    }
    async fn slug(&self) -> &str {
        &self.slug
    }
    async fn name(&self) -> &str {
        &self.name
    }
    async fn description(&self) -> &str {
        &self.description
    }
    async fn price(&self) -> Money {
        let (units, cents) = (self.price_minor / 100, self.price_minor % 100);
        Money {
            amount_minor: self.price_minor,
            currency: self.currency.to_owned(),
            formatted: format!("€{units}.{cents:02}"),
        }
    }
    async fn stock(&self) -> i32 {
        self.stock
    }
    async fn active(&self) -> bool {
        self.active
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
}

#[derive(SimpleObject)]
struct ProductEdge {
    cursor: String,
    node: Product,
}

#[derive(SimpleObject)]
struct PageInfo {
    has_next_page: bool,
    has_previous_page: bool,
    start_cursor: Option<String>,
    end_cursor: Option<String>,
}

#[derive(SimpleObject)]
struct ProductConnection {
    edges: Vec<ProductEdge>,
    page_info: PageInfo,
}

/// The api's cursor: base64url of a small JSON document.
fn cursor(product: &Product) -> String {
    let json = serde_json::json!({ "o": "name", "k": product.name, "id": product.id });
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json).unwrap_or_default())
}

struct Query {
    /// Sorted by name, like the api's default order.
    products: Arc<Vec<Product>>,
}

#[Object]
impl Query {
    async fn product(&self, slug: String) -> Option<Product> {
        self.products.iter().find(|p| p.slug == slug).cloned()
    }

    async fn products(&self, first: Option<i32>) -> ProductConnection {
        let size = usize::try_from(first.unwrap_or(20).clamp(1, 100)).unwrap_or(20);
        let edges: Vec<ProductEdge> = self
            .products
            .iter()
            .take(size)
            .map(|p| ProductEdge {
                cursor: cursor(p),
                node: p.clone(),
            })
            .collect();
        ProductConnection {
            page_info: PageInfo {
                has_next_page: self.products.len() > size,
                has_previous_page: false,
                start_cursor: edges.first().map(|e| e.cursor.clone()),
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
        }
    }
}

type BareSchema = Schema<Query, EmptyMutation, EmptySubscription>;

fn catalog() -> Vec<Product> {
    let mut all: Vec<Product> = api::seed::demo_products()
        .unwrap_or_default()
        .into_iter()
        .map(|p| Product {
            id: uuid::Uuid::now_v7(),
            sku: p.sku.as_str().to_owned(),
            slug: p.slug.as_str().to_owned(),
            name: p.name,
            description: p.description,
            price_minor: p.price.minor(),
            currency: "EUR",
            stock: p.stock,
            active: p.active,
            created_at: Utc::now(),
        })
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    all
}

async fn graphql(schema: web::Data<BareSchema>, body: web::Bytes) -> HttpResponse {
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => return HttpResponse::BadRequest().body(err.to_string()),
    };
    let response = schema.execute(request).await;
    match serde_json::to_vec(&response) {
        Ok(body) => HttpResponse::Ok().content_type("application/json").body(body),
        Err(err) => HttpResponse::InternalServerError().body(err.to_string()),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BARE_BIND").ok())
        .unwrap_or_else(|| "127.0.0.1:8088".to_owned());
    let schema = web::Data::new(
        Schema::build(
            Query {
                products: Arc::new(catalog()),
            },
            EmptyMutation,
            EmptySubscription,
        )
        .finish(),
    );
    let listener = std::net::TcpListener::bind(&bind)?;
    println!(
        "bare_graphql listening on http://{}/graphql",
        listener.local_addr()?
    );
    // Two workers, like the api on this 2-core machine.
    HttpServer::new(move || {
        App::new()
            .app_data(schema.clone())
            .route("/graphql", web::post().to(graphql))
    })
    .workers(2)
    .listen(listener)?
    .run()
    .await
}
