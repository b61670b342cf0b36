//! The address book over GraphQL: your own addresses only, one default.
use serde_json::{Value, json};
use testkit::Backend;

use crate::helpers::{TestApp, error_code, on_both_backends};

const ADD: &str = "mutation($input: MailingAddressInput!, $default: Boolean) {
  addAddress(input: $input, defaultShipping: $default) { id city countryCode isDefaultShipping }
}";
const LIST: &str = "{ addresses { id line1 city postalCode countryCode isDefaultShipping } }";

fn home(line1: &str) -> Value {
    json!({
        "fullName": "Ada Lovelace",
        "line1": line1,
        "city": "Berlin",
        "postalCode": "10115",
        "countryCode": "de"
    })
}

fn ids_and_defaults(body: &Value) -> Vec<(String, bool)> {
    body["data"]["addresses"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {body}"))
        .iter()
        .map(|a| {
            (
                a["id"].as_str().expect("id").to_owned(),
                a["isDefaultShipping"].as_bool().expect("flag"),
            )
        })
        .collect()
}

async fn a_customer_keeps_an_address_book_no_one_else_can_read_or_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada@example.com").await;
    let eve = app.register("eve@example.com").await;

    let anonymous = app.graphql(LIST, json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");

    let first = app
        .graphql_as(&ada, ADD, json!({ "input": home("Unter den Linden 1") }))
        .await;
    assert_eq!(first["data"]["addAddress"]["countryCode"], "DE", "{first}");
    assert_eq!(
        first["data"]["addAddress"]["isDefaultShipping"], true,
        "the first is the default"
    );
    let first_id = first["data"]["addAddress"]["id"].as_str().expect("id").to_owned();
    let second = app
        .graphql_as(
            &ada,
            ADD,
            json!({ "input": home("Friedrichstraße 2"), "default": true }),
        )
        .await;
    let second_id = second["data"]["addAddress"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let listed = app.graphql_as(&ada, LIST, json!({})).await;
    assert_eq!(
        ids_and_defaults(&listed),
        [(second_id.clone(), true), (first_id.clone(), false)],
        "one default, listed first: {listed}"
    );

    let theirs = app.graphql_as(&eve, LIST, json!({})).await;
    assert_eq!(ids_and_defaults(&theirs), []);
    let hijack = app
        .graphql_as(
            &eve,
            "mutation($id: ID!, $input: MailingAddressInput!) { updateAddress(id: $id, input: $input) { id } }",
            json!({ "id": first_id, "input": home("Somewhere else 3") }),
        )
        .await;
    assert_eq!(error_code(&hijack), "NOT_FOUND");
    let delete = "mutation($id: ID!) { deleteAddress(id: $id) }";
    let removal = app.graphql_as(&eve, delete, json!({ "id": first_id })).await;
    assert_eq!(error_code(&removal), "NOT_FOUND");

    let moved = app
        .graphql_as(
            &ada,
            "mutation($id: ID!, $input: MailingAddressInput!) {
               updateAddress(id: $id, input: $input, defaultShipping: true) { line1 isDefaultShipping }
             }",
            json!({ "id": first_id, "input": home("Unter den Linden 5") }),
        )
        .await;
    assert_eq!(
        moved["data"]["updateAddress"]["line1"], "Unter den Linden 5",
        "{moved}"
    );
    let listed = app.graphql_as(&ada, LIST, json!({})).await;
    assert_eq!(
        ids_and_defaults(&listed),
        [(first_id.clone(), true), (second_id.clone(), false)]
    );

    let gone = app.graphql_as(&ada, delete, json!({ "id": second_id })).await;
    assert_eq!(gone["data"]["deleteAddress"], true, "{gone}");
    assert_eq!(
        ids_and_defaults(&app.graphql_as(&ada, LIST, json!({})).await).len(),
        1
    );
}
on_both_backends!(
    address_book,
    a_customer_keeps_an_address_book_no_one_else_can_read_or_change
);

async fn a_bad_address_is_refused_naming_its_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada@example.com").await;
    let mut input = home("Unter den Linden 1");
    input["postalCode"] = json!("10115<script>");

    let refused = app.graphql_as(&ada, ADD, json!({ "input": input })).await;

    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
    assert_eq!(
        refused["errors"][0]["extensions"]["field"], "postalCode",
        "{refused}"
    );
    assert_eq!(ids_and_defaults(&app.graphql_as(&ada, LIST, json!({})).await), []);
}
on_both_backends!(bad_address, a_bad_address_is_refused_naming_its_field);
