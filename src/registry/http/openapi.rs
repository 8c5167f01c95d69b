//! Completes the OpenAPI document the router builds from its routes, so that it validates
//! (`openapi-spec-validator`) and describes every status a route really answers
//! (`schemathesis`): the statuses every route of a kind shares are added here, once, instead of
//! on each route.

use serde_json::{Map, Value, json};

/// The standard reason phrase, as the description of a response that has none.
fn reason(status: &str) -> &'static str {
    status
        .parse::<u16>()
        .ok()
        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Response")
}

fn error_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

/// Adds `status` to `responses` unless the route documents it already.
fn add(responses: &mut Map<String, Value>, status: &str, description: &str, schema: &str) {
    responses
        .entry(status.to_string())
        .or_insert_with(|| error_response(description, schema));
}

/// Fills in the shared statuses and the missing descriptions; fixes schemas that the derive
/// cannot express.
pub fn complete(mut doc: Value) -> Value {
    // `aud` is a string or an array of strings (RFC 7662, as in the token).
    if let Some(aud) = doc.pointer_mut("/components/schemas/Introspection/properties/aud") {
        *aud = json!({
            "description": "One audience as a string, several as an array (as in the token).",
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
        });
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (_method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else {
                continue;
            };
            let secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty());
            let params: Vec<String> = op
                .get("parameters")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| p["in"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let body_type = op
                .get("requestBody")
                .and_then(|b| b.get("content"))
                .and_then(Value::as_object)
                .and_then(|c| c.keys().next().cloned());
            let responses = op
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("responses is an object");
            if path.starts_with("/oauth/") {
                // RFC 6749 §5.2 errors: a form that cannot be read or is too large, a caller
                // that cannot be authenticated, a store that is busy.
                add(responses, "400", "The request is invalid", "OAuthErrorBody");
                add(
                    responses,
                    "401",
                    "The client could not be authenticated",
                    "OAuthErrorBody",
                );
                add(
                    responses,
                    "413",
                    "The request body is too large",
                    "OAuthErrorBody",
                );
                add(
                    responses,
                    "503",
                    "The registry is busy; try again",
                    "OAuthErrorBody",
                );
            } else if path.starts_with("/v1/") {
                let has_path = params.iter().any(|p| p == "path");
                if secured {
                    add(responses, "401", "No valid API token", "ApiErrorBody");
                    // Acting on one record or writing is decided by the policy per caller;
                    // the caller's own things (`/v1/me…`) are always theirs.
                    if (has_path || body_type.is_some()) && !path.starts_with("/v1/me") {
                        add(
                            responses,
                            "403",
                            "The caller may not do this",
                            "ApiErrorBody",
                        );
                    }
                }
                if params.iter().any(|p| p == "query") {
                    add(
                        responses,
                        "400",
                        "A query parameter is invalid",
                        "ApiErrorBody",
                    );
                    // Text parameters follow the same rules as text in bodies.
                    add(
                        responses,
                        "422",
                        "A query parameter is not acceptable",
                        "ApiErrorBody",
                    );
                }
                if has_path {
                    add(
                        responses,
                        "400",
                        "A path parameter is invalid",
                        "ApiErrorBody",
                    );
                    add(responses, "404", "No such record", "ApiErrorBody");
                }
                if let Some(content_type) = body_type {
                    add(
                        responses,
                        "400",
                        "The body is not valid JSON",
                        "ApiErrorBody",
                    );
                    add(responses, "413", "The body is too large", "ApiErrorBody");
                    add(responses, "415", "The body is not JSON", "ApiErrorBody");
                    if content_type == "application/json" {
                        add(
                            responses,
                            "422",
                            "The body does not fit the schema",
                            "ApiErrorBody",
                        );
                    }
                }
                add(
                    responses,
                    "503",
                    "The registry is busy; try again",
                    "ApiErrorBody",
                );
            }
            for (status, response) in responses.iter_mut() {
                if let Some(r) = response.as_object_mut()
                    && !r.contains_key("$ref")
                    && r.get("description")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                {
                    r.insert("description".into(), json!(reason(status)));
                }
            }
        }
    }
    doc
}
