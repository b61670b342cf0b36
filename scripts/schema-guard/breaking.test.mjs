// node --test scripts/schema-guard: what the guard lets through and what it stops.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { breakingChanges } from './breaking.mjs';

const base = `
  enum Status { OPEN SHIPPED LOST @deprecated(reason: "never used") }
  input Filter { name: String old: String @deprecated(reason: "use name") }
  type Product { id: ID! name: String! sku: String @deprecated(reason: "use variants") }
  type Query {
    product(id: ID!, slug: String @deprecated(reason: "use productBySlug"), locale: String): Product
    status: Status
    products(filter: Filter): [Product!]!
  }
`;
const messages = async (next) => (await breakingChanges(base, next)).map((c) => c.path);

test('an additive change passes', async () => {
  const next = base.replace('sku: String', 'price: Int sku: String');
  assert.deepEqual(await messages(next), []);
});

test('removing a field that was not deprecated is breaking', async () => {
  assert.deepEqual(await messages(base.replace('name: String!', '')), ['Product.name']);
});

test('retyping a field is breaking', async () => {
  assert.deepEqual(await messages(base.replace('name: String!', 'name: Int!')), ['Product.name']);
});

test('removing what was deprecated passes: field, enum value, input field, argument', async () => {
  const next = base
    .replace('sku: String @deprecated(reason: "use variants")', '')
    .replace('LOST @deprecated(reason: "never used")', '')
    .replace('old: String @deprecated(reason: "use name")', '')
    .replace('slug: String @deprecated(reason: "use productBySlug"), ', '');
  assert.deepEqual(await messages(next), []);
});

test('removing an argument or an enum value that was not deprecated is breaking', async () => {
  assert.deepEqual(await messages(base.replace(', locale: String', '')), ['Query.product.locale']);
  assert.deepEqual(await messages(base.replace('SHIPPED ', '')), ['Status.SHIPPED']);
});

test('a new required argument is breaking', async () => {
  assert.deepEqual(await messages(base.replace('status: Status', 'status(at: Int!): Status')), [
    'Query.status.at',
  ]);
});
