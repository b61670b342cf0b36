// A Storefront client as a frontend would write one: urql for queries and
// mutations over HTTP, graphql-ws for the orderUpdated subscription.
//
//   STOREFRONT_URL=http://127.0.0.1:8080 node main.mjs
//
// It registers a new customer, lists a few products, orders the first one
// in stock, then watches the order and prints each state until it is PAID
// (exit 0), or gives up after TIMEOUT_SECS (exit 1). PAYMENT_TOKEN picks
// the sandbox's behaviour (default sandbox_ok; sandbox_flaky settles after
// two failed captures).
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from "@urql/core";
import { createClient as createWsClient } from "graphql-ws";
import WebSocket from "ws";

const api = process.env.STOREFRONT_URL ?? "http://127.0.0.1:8080";
const paymentToken = process.env.PAYMENT_TOKEN ?? "sandbox_ok";
const timeoutSecs = Number(process.env.TIMEOUT_SECS ?? 60);

let accessToken = null;

// Subscriptions: one socket, opened when the first one starts, with the
// access token in connection_init as the server expects.
const sockets = createWsClient({
  url: `${api.replace(/^http/, "ws")}/graphql/ws`,
  webSocketImpl: WebSocket,
  connectionParams: () => ({ Authorization: `Bearer ${accessToken}` }),
});

const client = new Client({
  url: `${api}/graphql`,
  exchanges: [
    cacheExchange,
    fetchExchange,
    subscriptionExchange({
      forwardSubscription(request) {
        const input = { ...request, query: request.query || "" };
        return {
          subscribe(sink) {
            return { unsubscribe: sockets.subscribe(input, sink) };
          },
        };
      },
    }),
  ],
  fetchOptions: () => ({
    headers: accessToken ? { authorization: `Bearer ${accessToken}` } : {},
  }),
  requestPolicy: "network-only",
});

/** Runs a query or mutation; throws with the server's code on an error. */
async function run(kind, document, variables = {}) {
  const result = await client[kind](document, variables).toPromise();
  if (result.error) {
    const code = result.error.graphQLErrors?.[0]?.extensions?.code ?? "NETWORK";
    throw new Error(`${code}: ${result.error.message}`);
  }
  return result.data;
}

const email = `web-client-${Date.now()}@example.com`;
const registered = await run(
  "mutation",
  `mutation Register($input: RegisterInput!) {
     register(input: $input) { accessToken user { id email } }
   }`,
  { input: { email, password: "correct horse battery", name: "Web Client" } },
);
accessToken = registered.register.accessToken;
console.log(`registered ${registered.register.user.email}`);

const catalog = await run(
  "query",
  `query Catalog { products(first: 5, filter: { inStock: true }) {
     totalCount edges { node { id name stock price { formatted } } } } }`,
);
for (const { node } of catalog.products.edges) {
  console.log(`product ${node.name} ${node.price.formatted} (${node.stock} in stock)`);
}
const product = catalog.products.edges[0]?.node;
if (!product) {
  console.error("no product in stock");
  process.exit(1);
}

const placed = await run(
  "mutation",
  `mutation Place($input: PlaceOrderInput!) {
     placeOrder(input: $input) { id status total { formatted } }
   }`,
  {
    input: {
      lines: [{ productId: product.id, quantity: 1 }],
      paymentToken,
      idempotencyKey: `web-client-${Date.now()}`,
    },
  },
);
const order = placed.placeOrder;
console.log(`ordered ${order.id} for ${order.total.formatted}`);

const timer = setTimeout(() => {
  console.error(`the order was not PAID within ${timeoutSecs} s`);
  process.exit(1);
}, timeoutSecs * 1000);

const watching = client
  .subscription(
    `subscription Watch($id: ID!) {
       orderUpdated(id: $id) { id status payment { status attempts } }
     }`,
    { id: order.id },
  )
  .subscribe((result) => {
    if (result.error) {
      console.error(`subscription error: ${result.error.message}`);
      process.exit(1);
    }
    const { status, payment } = result.data.orderUpdated;
    console.log(`status ${status} payment ${payment?.status ?? "-"} attempts ${payment?.attempts ?? 0}`);
    if (status === "PAID") {
      clearTimeout(timer);
      watching.unsubscribe();
      sockets.dispose();
      process.exit(0);
    }
  });
