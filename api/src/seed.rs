//! The demo catalog: 32 products (8 kinds in 4 colours) so a fresh shop has
//! something to browse; three of them come in several variants (a T-shirt
//! and a hoodie in sizes, a mug in two finishes), and every variant has a
//! weight for shipping. The shop also ships somewhere (`shipping`: zones,
//! tax rates, a code). Seeding skips what exists, and writes a product with
//! its variants in one transaction, so it can run again.
use entity::DomainError;
use entity::catalog::{NewProduct, NewVariant, VariantPatch};
use entity::ids::VariantId;
use entity::tables::products;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};

mod shipping;
pub use shipping::{DEMO_CODE, seed_shipping};

const KINDS: &[(&str, &str, i64)] = &[
    ("tee", "Organic cotton T-shirt, relaxed fit.", 2_500),
    (
        "hoodie",
        "Heavyweight fleece hoodie with a kangaroo pocket.",
        6_900,
    ),
    ("cap", "Six-panel cap with an adjustable strap.", 2_200),
    ("socks", "Merino crew socks, pack of two.", 1_800),
    ("mug", "Stoneware mug, 350 ml, dishwasher safe.", 1_600),
    ("tote", "Canvas tote bag with inner pocket.", 1_900),
    ("notebook", "A5 dotted notebook, 160 pages.", 1_400),
    ("sticker-pack", "Five vinyl stickers, weatherproof.", 600),
];
const COLOURS: &[&str] = &["black", "white", "navy", "forest"];

/// Grams per kind (the default variant's weight).
const WEIGHTS: &[(&str, i32)] = &[
    ("tee", 200),
    ("hoodie", 650),
    ("cap", 120),
    ("socks", 90),
    ("mug", 380),
    ("tote", 250),
    ("notebook", 300),
    ("sticker-pack", 20),
];

/// A demo variant: SKU suffix, option value, price change, stock, grams.
type DemoVariant = (&'static str, &'static str, i64, i32, i32);

/// The demo products sold in variants: SKU, option name, variants. Their
/// option-less default variant is turned off.
const VARIANTS: &[(&str, &str, &[DemoVariant])] = &[
    (
        "DEMO-TEE-BLACK",
        "Size",
        &[
            ("S", "S", 0, 12, 180),
            ("M", "M", 0, 20, 200),
            ("L", "L", 200, 8, 220),
        ],
    ),
    (
        "DEMO-HOODIE-NAVY",
        "Size",
        &[
            ("M", "M", 0, 6, 620),
            ("L", "L", 0, 9, 650),
            ("XL", "XL", 300, 4, 700),
        ],
    ),
    (
        "DEMO-MUG-WHITE",
        "Finish",
        &[("GLOSSY", "Glossy", 0, 15, 380), ("MATTE", "Matte", 200, 10, 380)],
    ),
];

/// Gives a new demo product its weight, or its variants (its default one
/// turned off), in the caller's transaction.
async fn add_variants<C: ConnectionTrait>(conn: &C, product: &products::Model) -> Result<(), DomainError> {
    let default = VariantId(product.id.into_uuid());
    let grams = WEIGHTS
        .iter()
        .find(|(kind, _)| product.slug.ends_with(kind))
        .map_or(0, |(_, grams)| *grams);
    let Some((_, option, variants)) = VARIANTS.iter().find(|(sku, _, _)| *sku == product.sku) else {
        let weigh = VariantPatch::parse(None, None, Some(grams), None)?;
        entity::catalog::update_variant(conn, default, weigh).await?;
        return Ok(());
    };
    for (suffix, value, extra, stock, grams) in *variants {
        let new = NewVariant::parse(
            &format!("{}-{suffix}", product.sku),
            None,
            &[((*option).to_owned(), (*value).to_owned())],
            product.price_minor + extra,
            *stock,
            *grams,
            true,
        )?;
        entity::catalog::create_variant(conn, product.id, new).await?;
    }
    let off = VariantPatch::parse(None, None, Some(grams), Some(false))?;
    entity::catalog::update_variant(conn, default, off).await?;
    Ok(())
}

/// The demo products, in a stable order (the benchmarks' bare server
/// serves the same ones from memory).
///
/// # Errors
/// Never for the built-in list; the type is the parser's.
pub fn demo_products() -> Result<Vec<NewProduct>, DomainError> {
    let mut all = Vec::with_capacity(KINDS.len() * COLOURS.len());
    for (k, (kind, description, price)) in KINDS.iter().enumerate() {
        for (c, colour) in COLOURS.iter().enumerate() {
            let title_kind = kind.replace('-', " ");
            let name = format!("{}{} {}", &colour[..1].to_uppercase(), &colour[1..], title_kind);
            let stock = i32::try_from((k * 7 + c * 13) % 40 + 5).unwrap_or(10);
            all.push(NewProduct::parse(
                &format!("DEMO-{}-{}", kind.to_uppercase(), colour.to_uppercase()),
                &format!("{colour}-{kind}"),
                &name,
                description,
                price + i64::try_from(c).unwrap_or(0) * 100,
                "EUR",
                stock,
                true,
            )?);
        }
    }
    Ok(all)
}

/// Adds the demo products whose SKU is not there yet, and the demo shop's
/// shipping zones, tax rates and code ([`seed_shipping`]); returns how many
/// products were added.
///
/// # Errors
/// [`DomainError`] when the database fails.
pub async fn seed_demo_catalog(db: &DatabaseConnection) -> Result<usize, DomainError> {
    let mut added = 0;
    for product in demo_products()? {
        let sku = product.sku.as_str().to_owned();
        let exists = products::Entity::find()
            .filter(products::Column::Sku.eq(sku.as_str()))
            .count(db)
            .await?
            > 0;
        if !exists {
            let txn = entity::db::begin_write(db).await?;
            let product = entity::catalog::create_product(&txn, product).await?;
            add_variants(&txn, &product).await?;
            txn.commit().await?;
            added += 1;
        }
    }
    seed_shipping(db).await?;
    Ok(added)
}

/// Seeds the demo catalog only into an empty catalog, so a shop that has
/// real products (or deleted the demo ones) is never re-seeded on restart.
///
/// # Errors
/// [`DomainError`] when the database fails.
pub async fn seed_if_empty(db: &DatabaseConnection) -> Result<usize, DomainError> {
    if products::Entity::find().count(db).await? > 0 {
        return Ok(0);
    }
    seed_demo_catalog(db).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_catalog_has_at_least_thirty_valid_products() {
        let products = super::demo_products().expect("demo products are valid");
        assert!(products.len() >= 30);
        let mut slugs: Vec<_> = products.iter().map(|p| format!("{:?}", p.slug)).collect();
        slugs.sort();
        slugs.dedup();
        assert_eq!(slugs.len(), products.len(), "slugs are unique");
        let skus: Vec<String> = products.iter().map(|p| p.sku.as_str().to_owned()).collect();
        for (sku, _, _) in super::VARIANTS {
            assert!(skus.iter().any(|s| s == sku), "{sku} is a demo product");
        }
    }
}
