//! `GET /openapi.json`: the API description (OpenAPI 3.0), built once from
//! serde values.

use std::sync::OnceLock;

use axum::Json;
use serde_json::{Value, json};

/// Returns the API description.
pub async fn document() -> Json<Value> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    Json(DOCUMENT.get_or_init(build).clone())
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn id_parameter() -> Value {
    json!({
        "name": "id", "in": "path", "required": true,
        "schema": {"type": "string", "format": "uuid"}
    })
}

fn customer_body() -> Value {
    json!({
        "required": true,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CustomerInput"}}}
    })
}

fn customer_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Customer"}}}
    })
}

fn paths() -> Value {
    json!({
        "/api/v1/customers": {
            "get": {
                "summary": "List customers with their addresses, in creation order",
                "parameters": [
                    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
                    {"name": "size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}
                ],
                "responses": {
                    "200": {"description": "A page of customers", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Customer"}}}}},
                    "400": error_response("Invalid page or size"),
                    "503": error_response("Database unavailable; see Retry-After")
                }
            },
            "post": {
                "summary": "Create a customer",
                "requestBody": customer_body(),
                "responses": {
                    "201": customer_response("Created; Location names the new customer"),
                    "400": error_response("Invalid fields or malformed JSON"),
                    "409": error_response("Another customer has this email"),
                    "413": error_response("Body larger than 1 MiB"),
                    "415": error_response("Content type is not application/json")
                }
            }
        },
        "/api/v1/customers/{id}": {
            "parameters": [id_parameter()],
            "get": {
                "summary": "Read a customer",
                "responses": {
                    "200": customer_response("The customer"),
                    "400": error_response("Invalid UUID"),
                    "404": error_response("No such customer")
                }
            },
            "put": {
                "summary": "Replace a customer's fields and addresses",
                "requestBody": customer_body(),
                "responses": {
                    "200": customer_response("The customer as stored"),
                    "400": error_response("Invalid fields, UUID or JSON"),
                    "404": error_response("No such customer"),
                    "409": error_response("Another customer has this email")
                }
            },
            "delete": {
                "summary": "Delete a customer and its addresses",
                "responses": {
                    "204": {"description": "Deleted"},
                    "400": error_response("Invalid UUID"),
                    "404": error_response("No such customer")
                }
            }
        },
        "/api/v1/customers/simulate/locking": {
            "get": {
                "summary": "Run a transaction that meets a real OCC conflict and is retried to success",
                "responses": {"200": {"description": "Attempts and conflicts", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SimulationReport"}}}}}
            }
        },
        "/api/v1/customers/simulate/timeout": {
            "get": {
                "summary": "Run a transaction that conflicts on every attempt until the transaction timeout",
                "responses": {"504": error_response("The transaction timed out")}
            }
        },
        "/health": {"get": {"summary": "Liveness", "responses": {"200": {"description": "The process is alive"}}}},
        "/health/ready": {
            "get": {
                "summary": "Readiness: the database answers and the auth token has not expired",
                "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready; see Retry-After"}}
            }
        },
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Text exposition format"}}}}
    })
}

fn schemas() -> Value {
    let text = |max: u32| json!({"type": "string", "minLength": 1, "maxLength": max});
    json!({
        "Address": {
            "type": "object",
            "required": ["id", "street", "city", "state", "postalCode", "country", "default"],
            "properties": {
                "id": {"type": "string", "format": "uuid", "readOnly": true},
                "street": text(200), "city": text(100), "state": text(100),
                "postalCode": {"type": "string", "maxLength": 20, "description": "White space removed, upper-cased"},
                "country": text(100),
                "default": {"type": "boolean", "description": "isDefault is accepted on input; the first address is the default when none is"}
            }
        },
        "Customer": {
            "type": "object",
            "required": ["id", "firstName", "email", "addresses"],
            "properties": {
                "id": {"type": "string", "format": "uuid", "readOnly": true},
                "firstName": {"type": "string", "minLength": 2, "maxLength": 50},
                "lastName": {"type": "string", "maxLength": 50, "nullable": true},
                "email": {"type": "string", "format": "email", "maxLength": 254, "description": "Trimmed, lower-cased, unique"},
                "addresses": {"type": "array", "minItems": 1, "maxItems": 5, "items": {"$ref": "#/components/schemas/Address"}}
            }
        },
        "CustomerInput": {
            "type": "object",
            "additionalProperties": false,
            "required": ["firstName", "email", "addresses"],
            "properties": {
                "id": {"type": "string", "format": "uuid", "description": "Ignored on POST; on PUT it must match the path"},
                "firstName": {"type": "string", "minLength": 2, "maxLength": 50},
                "lastName": {"type": "string", "maxLength": 50, "nullable": true},
                "email": {"type": "string", "format": "email"},
                "addresses": {"type": "array", "minItems": 1, "maxItems": 5, "items": {"$ref": "#/components/schemas/Address"}}
            }
        },
        "SimulationReport": {
            "type": "object",
            "properties": {
                "attempts": {"type": "integer"}, "conflicts": {"type": "integer"}, "counter": {"type": "integer"}
            }
        },
        "Error": {
            "type": "object",
            "required": ["timestamp", "status", "message", "errors", "path"],
            "properties": {
                "timestamp": {"type": "string", "format": "date-time"},
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
                "path": {"type": "string"}
            }
        }
    })
}

fn build() -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Customer API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Customers and their addresses on Aurora DSQL. Errors share one JSON shape."
        },
        "paths": paths(),
        "components": {"schemas": schemas()}
    })
}
