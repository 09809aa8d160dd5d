//! The emulator over HTTP as any Graph client meets it: tokens (and their refusal), Graph's
//! error shape, `$batch` limits and `dependsOn`, `412` on a stale entity tag, `429` with
//! `Retry-After` under injected throttling, and paging of listings with `@odata.nextLink`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use graph_emulator::{GraphEmulator, GraphEmulatorConfig, RunningGraphEmulator};
use serde_json::{Value, json};

async fn token(emu: &RunningGraphEmulator, secret: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/oauth2/v2.0/token", emu.authority()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", emu.config().client_id.as_str()),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
}

async fn session() -> (RunningGraphEmulator, reqwest::Client, String) {
    let emu = GraphEmulator::start(GraphEmulatorConfig::default()).await.unwrap();
    let answer: Value = token(&emu, &emu.config().client_secret.clone()).await.json().await.unwrap();
    let bearer = answer["access_token"].as_str().unwrap().to_owned();
    (emu, reqwest::Client::new(), bearer)
}

async fn call(
    http: &reqwest::Client,
    emu: &RunningGraphEmulator,
    bearer: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = http.request(method.parse().unwrap(), format!("{}/v1.0{path}", emu.url())).bearer_auth(bearer);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    (status, headers, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

#[tokio::test]
async fn tokens_are_required_and_wrong_secrets_refused() {
    let (emu, http, bearer) = session().await;
    let refused = token(&emu, "wrong").await;
    assert_eq!(refused.status().as_u16(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    let (status, _, body) = call(&http, &emu, "not-a-token", "GET", "/users/alice@contoso.test", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    let (status, _, body) = call(&http, &emu, &bearer, "GET", "/users/alice@contoso.test", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["userPrincipalName"], "alice@contoso.test");
    emu.revoke_tokens();
    let (status, _, _) = call(&http, &emu, &bearer, "GET", "/users/alice@contoso.test", None).await;
    assert_eq!(status, 401, "a revoked token still worked");
}

#[tokio::test]
async fn batches_hold_twenty_and_failed_dependencies_answer_424() {
    let (emu, http, bearer) = session().await;
    let get = |i: usize| json!({"id": i.to_string(), "method": "GET", "url": "/users/alice@contoso.test"});
    let (status, _, body) =
        call(&http, &emu, &bearer, "POST", "/$batch", Some(json!({"requests": (0..21).map(get).collect::<Vec<_>>()})))
            .await;
    assert_eq!(status, 400, "{body}");
    let requests = json!({"requests": [
        {"id": "a", "method": "GET", "url": "/users/nobody@contoso.test"},
        {"id": "b", "method": "POST", "url": "/users/alice@contoso.test/contacts", "body": {"givenName": "X"}, "dependsOn": ["a"]},
        {"id": "c", "method": "POST", "url": "/users/alice@contoso.test/contacts", "body": {"givenName": "Y"}},
    ]});
    let (status, _, body) = call(&http, &emu, &bearer, "POST", "/$batch", Some(requests)).await;
    assert_eq!(status, 200);
    let by_id: std::collections::BTreeMap<String, u64> = body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(by_id, [("a".into(), 404), ("b".into(), 424), ("c".into(), 201)].into());
    let (_, _, listed) = call(&http, &emu, &bearer, "GET", "/users/alice@contoso.test/contacts", None).await;
    assert_eq!(listed["value"].as_array().unwrap().len(), 1, "the dependent create ran anyway");
}

#[tokio::test]
async fn stale_entity_tags_throttling_and_paging() {
    let (emu, http, bearer) = session().await;
    let (_, headers, created) =
        call(&http, &emu, &bearer, "POST", "/users/bob@contoso.test/contacts", Some(json!({"givenName": "A"}))).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(headers["etag"].to_str().unwrap(), created["@odata.etag"].as_str().unwrap());
    call(
        &http,
        &emu,
        &bearer,
        "PATCH",
        &format!("/users/bob@contoso.test/contacts/{id}"),
        Some(json!({"surname": "B"})),
    )
    .await;
    let stale = http
        .patch(format!("{}/v1.0/users/bob@contoso.test/contacts/{id}", emu.url()))
        .bearer_auth(&bearer)
        .header("If-Match", created["@odata.etag"].as_str().unwrap())
        .json(&json!({"surname": "C"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status().as_u16(), 412);

    for n in 0..11 {
        call(
            &http,
            &emu,
            &bearer,
            "POST",
            "/users/bob@contoso.test/contacts",
            Some(json!({"givenName": format!("P{n}")})),
        )
        .await;
    }
    let (_, _, first) =
        call(&http, &emu, &bearer, "GET", "/users/bob@contoso.test/contacts?$top=5&$select=id", None).await;
    assert_eq!(first["value"].as_array().unwrap().len(), 5);
    assert_eq!(first["value"][0].as_object().unwrap().keys().filter(|k| !k.starts_with('@')).count(), 1, "$select=id");
    let next = first["@odata.nextLink"].as_str().unwrap();
    let second: Value = http.get(next).bearer_auth(&bearer).send().await.unwrap().json().await.unwrap();
    assert_eq!(second["value"].as_array().unwrap().len(), 5);

    emu.inject_throttling("bob@contoso.test", 1, 7);
    let (status, headers, body) = call(&http, &emu, &bearer, "GET", "/users/bob@contoso.test/contacts", None).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(body["error"]["code"], "ApplicationThrottled");
    let (status, _, _) = call(&http, &emu, &bearer, "GET", "/users/alice@contoso.test/contacts", None).await;
    assert_eq!(status, 200, "throttling is per mailbox");
    let (status, _, body) =
        call(&http, &emu, &bearer, "POST", "/users/bob@contoso.test/contacts", Some(json!({"nickname": "x"}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("RequestBodyRead")),
        "unknown properties are refused"
    );
}
