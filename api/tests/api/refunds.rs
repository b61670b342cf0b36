//! An admin refunds part of a paid order over GraphQL; the worker asks the
//! gateway and the customer gets the refund email.
use serde_json::{Value, json};
use testkit::Backend;

use crate::helpers::{error_code, on_both_backends};
use crate::jobs::shop;

const REFUND: &str = "mutation($id: ID!, $input: RefundInput!) {
  refundOrder(id: $id, input: $input) { id amount { formatted } reason restocked status }
}";
const PAYMENT: &str = "query($id: ID!) { order(id: $id) { lines { id quantity } payment {
  status capturedAmount { formatted } refundedAmount { formatted } refunds { amount { formatted } status }
} } }";

async fn an_admin_refunds_one_unit_and_the_customer_is_emailed(backend: Backend) {
    let shop = shop(backend).await;
    // Two units at €12.34, paid.
    let id = shop.order_id("sandbox_ok").await;
    shop.wait_for(&id, |o| o["status"] == "PAID").await;
    let order = shop
        .app
        .graphql_as(&shop.customer, PAYMENT, json!({ "id": id }))
        .await;
    let line = order["data"]["order"]["lines"][0]["id"].clone();
    let refund = |input: Value| {
        let shop = &shop;
        let id = id.clone();
        async move {
            shop.app
                .graphql_as(&shop.admin, REFUND, json!({ "id": id, "input": input }))
                .await
        }
    };

    let by_customer = shop
        .app
        .graphql_as(
            &shop.customer,
            REFUND,
            json!({ "id": id, "input": { "amountMinor": 100, "reason": "mine" } }),
        )
        .await;
    assert_eq!(error_code(&by_customer), "FORBIDDEN");
    let both = refund(json!({ "amountMinor": 100, "lines": [], "reason": "x" })).await;
    assert_eq!(error_code(&both), "BAD_USER_INPUT");

    let one_unit = refund(
        json!({ "lines": [{ "lineId": line, "quantity": 1 }], "reason": "Arrived broken", "restock": true }),
    )
    .await;
    assert_eq!(
        one_unit["data"]["refundOrder"]["amount"]["formatted"], "€12.34",
        "{one_unit}"
    );
    assert_eq!(one_unit["data"]["refundOrder"]["restocked"], true);
    let too_much = refund(json!({ "amountMinor": 1235, "reason": "more" })).await;
    assert_eq!(
        error_code(&too_much),
        "BAD_USER_INPUT",
        "€12.34 is left: {too_much}"
    );
    assert_eq!(too_much["errors"][0]["extensions"]["field"], "amountMinor");

    let mail = &shop.wait_for_mail("Refund of €12.34", 1).await[0];
    assert_eq!(mail.to, "buyer@example.com");
    assert!(mail.text().contains("Reason: Arrived broken"), "{}", mail.text());
    let payment = shop
        .app
        .graphql_as(&shop.customer, PAYMENT, json!({ "id": id }))
        .await["data"]["order"]["payment"]
        .clone();
    assert_eq!(
        payment,
        json!({
            "status": "SETTLED",
            "capturedAmount": { "formatted": "€24.68" },
            "refundedAmount": { "formatted": "€12.34" },
            "refunds": [{ "amount": { "formatted": "€12.34" }, "status": "SUCCEEDED" }]
        }),
        "the customer sees what was taken and what came back"
    );
}
on_both_backends!(
    refund_one_unit,
    an_admin_refunds_one_unit_and_the_customer_is_emailed
);
