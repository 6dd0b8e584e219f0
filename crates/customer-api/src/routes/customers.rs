//! `/api/v1/customers`: list, read, create, replace and delete. Every write
//! is one transaction, retried as a whole on OCC conflicts.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use crate::body::ApiJson;
use crate::db::{Checkout, DbError, transact};
use crate::error::{ApiError, FieldErrors};
use crate::model::{Customer, CustomerInput, PageQuery};
use crate::repository;
use crate::state::AppState;
use crate::validate;

/// The prefix of every customer route.
pub const BASE_PATH: &str = "/api/v1/customers";

/// Parses a customer id from the path; upper-case hex is accepted.
fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(text).map_err(|_| {
        let mut errors = FieldErrors::new();
        errors.insert(
            "id".to_owned(),
            vec!["must be a UUID such as 123e4567-e89b-12d3-a456-426614174000".to_owned()],
        );
        ApiError {
            errors,
            ..ApiError::new(StatusCode::BAD_REQUEST, "invalid customer id")
        }
    })
}

/// `GET /api/v1/customers?page=&size=`
pub async fn list(
    State(state): State<Arc<AppState>>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Vec<Customer>>, ApiError> {
    let Query(query) =
        query.map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text()))?;
    let page = validate::page(&query).map_err(ApiError::validation)?;
    let customers = transact(&state, |state, _| async move {
        let mut connection = Checkout::take(&state).await?;
        let result = repository::list(&mut connection, page).await;
        connection.finish();
        result
    })
    .await?;
    Ok(Json(customers))
}

/// `GET /api/v1/customers/{id}`
pub async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Customer>, ApiError> {
    let id = parse_id(&id)?;
    let customer = transact(&state, |state, _| async move {
        let mut connection = Checkout::take(&state).await?;
        let result = repository::get(&mut connection, id).await;
        connection.finish();
        result
    })
    .await?;
    Ok(Json(customer))
}

/// `POST /api/v1/customers`
pub async fn create(
    State(state): State<Arc<AppState>>,
    ApiJson(input): ApiJson<CustomerInput>,
) -> Result<Response, ApiError> {
    let customer = validate::customer(&input).map_err(ApiError::validation)?;
    let id = Uuid::new_v4();
    let address_ids: Vec<Uuid> = customer.addresses.iter().map(|_| Uuid::new_v4()).collect();

    transact(&state, |state, attempt| {
        let customer = &customer;
        let address_ids = &address_ids;
        async move {
            let mut connection = Checkout::take(&state).await?;
            // A retry after a lost connection may follow a commit that
            // succeeded, so the customer's id is looked up first.
            let result = if attempt > 1 && exists(&mut connection, id).await? {
                Ok(())
            } else {
                repository::insert(&mut connection, id, customer, address_ids).await
            };
            connection.finish();
            result
        }
    })
    .await?;

    let view = repository::customer_view(id, &customer, &address_ids);
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("{BASE_PATH}/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `PUT /api/v1/customers/{id}`
pub async fn replace(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<CustomerInput>,
) -> Result<Json<Customer>, ApiError> {
    let id = parse_id(&id)?;
    let mut errors = validate::customer(&input).err().unwrap_or_default();
    if input.id.is_some_and(|body_id| body_id != id) {
        errors
            .entry("id".to_owned())
            .or_default()
            .push("must match the id in the path, or be left out".to_owned());
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let customer = validate::customer(&input).map_err(ApiError::validation)?;
    let address_ids: Vec<Uuid> = customer.addresses.iter().map(|_| Uuid::new_v4()).collect();

    transact(&state, |state, _| {
        let customer = &customer;
        let address_ids = &address_ids;
        async move {
            let mut connection = Checkout::take(&state).await?;
            let result = repository::replace(&mut connection, id, customer, address_ids).await;
            connection.finish();
            result
        }
    })
    .await?;
    Ok(Json(repository::customer_view(id, &customer, &address_ids)))
}

/// `DELETE /api/v1/customers/{id}`
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    transact(&state, |state, attempt| async move {
        let mut connection = Checkout::take(&state).await?;
        let result = match repository::delete(&mut connection, id).await {
            // A retry after a lost connection may follow a delete that
            // committed, so "not found" then means "already deleted".
            Err(DbError::Api(error)) if attempt > 1 && error.status == StatusCode::NOT_FOUND => {
                Ok(())
            }
            other => other,
        };
        connection.finish();
        result
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn exists(connection: &mut Checkout, id: Uuid) -> Result<bool, DbError> {
    let statement = connection
        .prepare_cached("SELECT 1 FROM customers WHERE id = $1")
        .await?;
    Ok(connection.query_opt(&statement, &[&id]).await?.is_some())
}
