//! Completes the OpenAPI document with what every route of a kind can answer, so clients
//! generated from it (and schemathesis, in `make test`) meet no undocumented status: a
//! body that is not well-formed JSON or multipart (400) or of another type (415), a
//! malformed parameter (400), the homeserver's missing or wrong `hs_token` (401, 403).
//! Request bodies refuse unknown fields (`deny_unknown_fields`), so their schemas say so.
//! Responses that hand out an id link to the operations that take it (OpenAPI links), so
//! generated clients and schemathesis's stateful phase go from creating a thing to using it.

use serde_json::{Value, json};
use utoipa::openapi::OpenApi;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn error(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } },
    })
}

/// An answer that names a thing, and the operations that take it.
struct Link {
    from: (&'static str, &'static str, &'static str),
    /// Each target parameter and the runtime expression that gives it.
    parameters: &'static [(&'static str, &'static str)],
    to: &'static [(&'static str, &'static str)],
}

const LINKS: &[Link] = &[
    Link {
        from: ("post", "/api/v1/credentials", "201"),
        parameters: &[("client_id", "$response.body#/client_id")],
        to: &[("put", "/api/v1/credentials/{client_id}"), ("delete", "/api/v1/credentials/{client_id}")],
    },
    Link {
        from: ("post", "/api/v1/tokens", "201"),
        parameters: &[("token_id", "$response.body#/id")],
        to: &[("delete", "/api/v1/tokens/{token_id}")],
    },
    Link {
        from: ("get", "/api/v1/tokens", "200"),
        parameters: &[("token_id", "$response.body#/0/id")],
        to: &[("delete", "/api/v1/tokens/{token_id}")],
    },
    Link {
        from: ("post", "/api/v1/webhooks", "201"),
        parameters: &[("id", "$response.body#/id")],
        to: &[
            ("put", "/api/v1/webhooks/{id}"),
            ("delete", "/api/v1/webhooks/{id}"),
            ("get", "/api/v1/webhooks/{id}/deliveries"),
            ("post", "/api/v1/webhooks/{id}/redeliver"),
            ("post", "/api/v1/webhooks/{id}/rotate-secret"),
        ],
    },
    Link {
        from: ("get", "/api/v1/webhooks/{id}/deliveries", "200"),
        parameters: &[("id", "$request.path.id"), ("delivery_id", "$response.body#/0/id")],
        to: &[("post", "/api/v1/webhooks/{id}/deliveries/{delivery_id}/retry")],
    },
    // A device has its id only once it is linked (scanned); the list names the linked ones.
    Link { from: ("post", "/api/v1/devices", "200"), parameters: &[], to: &[("get", "/api/v1/devices")] },
    Link {
        from: ("get", "/api/v1/devices", "200"),
        parameters: &[("device_id", "$response.body#/0/device_id")],
        to: &[("post", "/api/v1/devices/{device_id}/message")],
    },
];

/// Adds [`LINKS`] to their answers (`tests/api/openapi.rs` checks each joins operations
/// the spec has, by parameters they take).
fn add_links(spec: &mut Value) {
    for link in LINKS {
        let mut links = serde_json::Map::new();
        for (method, path) in link.to {
            let Some(operation_id) = spec["paths"][path][method]["operationId"].as_str() else { continue };
            let parameters: serde_json::Map<String, Value> =
                link.parameters.iter().map(|(name, expression)| ((*name).to_owned(), json!(expression))).collect();
            links.insert(operation_id.to_owned(), json!({ "operationId": operation_id, "parameters": parameters }));
        }
        let (method, path, status) = link.from;
        if let Some(response) = spec["paths"][path][method]["responses"].get_mut(status) {
            response["links"] = Value::Object(links);
        }
    }
}

pub fn complete(openapi: OpenApi) -> OpenApi {
    let mut spec = serde_json::to_value(&openapi).expect("the spec serializes");
    add_links(&mut spec);
    let mut request_schemas = Vec::new();
    if let Some(paths) = spec["paths"].as_object_mut() {
        for item in paths.values_mut() {
            for method in METHODS {
                let Some(operation) = item.get_mut(method) else { continue };
                complete_operation(operation, &mut request_schemas);
            }
        }
    }
    if let Some(schemas) = spec["components"]["schemas"].as_object_mut() {
        for name in request_schemas {
            if let Some(schema) = schemas.get_mut(&name).filter(|s| s["type"] == "object") {
                schema["additionalProperties"] = json!(false);
            }
        }
    }
    serde_json::from_value(spec).expect("the completed spec is a spec")
}

fn complete_operation(operation: &mut Value, request_schemas: &mut Vec<String>) {
    let from_homeserver =
        operation["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("homeserver").is_some()));
    let has_body = operation.get("requestBody").is_some();
    let has_parameters = operation["parameters"].as_array().is_some_and(|p| !p.is_empty());
    // The homeserver's transactions may carry fields of later Matrix versions.
    let content = operation["requestBody"]["content"].as_object().filter(|_| !from_homeserver);
    if let Some(content) = content {
        for media in content.values() {
            if let Some(name) = media["schema"]["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
                request_schemas.push(name.to_owned());
            }
        }
    }
    let Some(responses) = operation["responses"].as_object_mut() else { return };
    let mut add = |status: &str, response: Value| {
        responses.entry(status).or_insert(response);
    };
    if from_homeserver {
        // The homeserver's own error shape, `{"errcode","error"}`.
        add("401", json!({ "description": "no hs_token" }));
        add("403", json!({ "description": "a wrong hs_token" }));
        if has_body {
            add("400", json!({ "description": "the body is not a JSON object" }));
            add("415", json!({ "description": "the body is not JSON" }));
            add("422", error("the body is not a transaction (`events` is not a list)"));
        }
        return;
    }
    if has_body {
        add("400", error("the body is not well-formed (JSON, or multipart for a file)"));
        add("415", error("the body is not of a Content-Type this route takes"));
    }
    if has_parameters {
        add("400", error("a path, query or header parameter is malformed"));
    }
}
