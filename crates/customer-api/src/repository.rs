//! SQL for customers and their addresses. Each function runs one whole
//! transaction (repeatable read, DSQL's only level) on the connection it is
//! given. A page of customers loads all its addresses in one query.

use std::collections::HashMap;

use secret_pool::ClientWrapper;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::db::DbError;
use crate::error::ApiError;
use crate::model::{Address, Customer};
use crate::validate::{Page, ValidAddress, ValidCustomer};

const SELECT_CUSTOMERS_PAGE: &str = "SELECT id, first_name, last_name, email FROM customers \
     ORDER BY created_at, id LIMIT $1 OFFSET $2";
const SELECT_CUSTOMER: &str =
    "SELECT id, first_name, last_name, email FROM customers WHERE id = $1";
const SELECT_ADDRESSES: &str = "SELECT id, customer_id, street, city, state, postal_code, country, \
     is_default FROM addresses WHERE customer_id = ANY($1) ORDER BY customer_id, sort_order";
const INSERT_CUSTOMER: &str =
    "INSERT INTO customers (id, first_name, last_name, email) VALUES ($1, $2, $3, $4)";
const UPDATE_CUSTOMER: &str = "UPDATE customers SET first_name = $2, last_name = $3, email = $4, \
     updated_at = now() WHERE id = $1";
const DELETE_CUSTOMER: &str = "DELETE FROM customers WHERE id = $1";
const DELETE_ADDRESSES: &str = "DELETE FROM addresses WHERE customer_id = $1";
const ADDRESS_COLUMNS: usize = 9;

/// Returns one page of customers with their addresses, in creation order.
pub async fn list(client: &mut ClientWrapper, page: Page) -> Result<Vec<Customer>, DbError> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let statement = transaction.prepare_cached(SELECT_CUSTOMERS_PAGE).await?;
    let offset = page.number * page.size;
    let rows = transaction
        .query(&statement, &[&page.size, &offset])
        .await?;
    let mut customers: Vec<Customer> = rows.iter().map(customer_from_row).collect();

    let ids: Vec<Uuid> = customers.iter().map(|customer| customer.id).collect();
    let mut addresses = load_addresses(&transaction, &ids).await?;
    transaction.commit().await?;

    for customer in &mut customers {
        customer.addresses = addresses.remove(&customer.id).unwrap_or_default();
    }
    Ok(customers)
}

/// Returns one customer, or a 404 error.
pub async fn get(client: &mut ClientWrapper, id: Uuid) -> Result<Customer, DbError> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let statement = transaction.prepare_cached(SELECT_CUSTOMER).await?;
    let row = transaction
        .query_opt(&statement, &[&id])
        .await?
        .ok_or_else(|| ApiError::customer_not_found(id))?;
    let mut customer = customer_from_row(&row);
    let mut addresses = load_addresses(&transaction, &[id]).await?;
    transaction.commit().await?;

    customer.addresses = addresses.remove(&id).unwrap_or_default();
    Ok(customer)
}

/// Inserts a customer and its addresses with the given ids.
pub async fn insert(
    client: &mut ClientWrapper,
    id: Uuid,
    customer: &ValidCustomer,
    address_ids: &[Uuid],
) -> Result<(), DbError> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .await?;
    let statement = transaction.prepare_cached(INSERT_CUSTOMER).await?;
    transaction
        .execute(
            &statement,
            &[
                &id,
                &customer.first_name,
                &customer.last_name,
                &customer.email,
            ],
        )
        .await?;
    insert_addresses(&transaction, id, &customer.addresses, address_ids).await?;
    transaction.commit().await?;
    Ok(())
}

/// Replaces a customer's fields and addresses, or returns a 404 error.
pub async fn replace(
    client: &mut ClientWrapper,
    id: Uuid,
    customer: &ValidCustomer,
    address_ids: &[Uuid],
) -> Result<(), DbError> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .await?;
    let statement = transaction.prepare_cached(UPDATE_CUSTOMER).await?;
    let updated = transaction
        .execute(
            &statement,
            &[
                &id,
                &customer.first_name,
                &customer.last_name,
                &customer.email,
            ],
        )
        .await?;
    if updated == 0 {
        return Err(ApiError::customer_not_found(id).into());
    }
    let statement = transaction.prepare_cached(DELETE_ADDRESSES).await?;
    transaction.execute(&statement, &[&id]).await?;
    insert_addresses(&transaction, id, &customer.addresses, address_ids).await?;
    transaction.commit().await?;
    Ok(())
}

/// Deletes a customer and its addresses, or returns a 404 error.
pub async fn delete(client: &mut ClientWrapper, id: Uuid) -> Result<(), DbError> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .await?;
    let statement = transaction.prepare_cached(DELETE_CUSTOMER).await?;
    if transaction.execute(&statement, &[&id]).await? == 0 {
        return Err(ApiError::customer_not_found(id).into());
    }
    let statement = transaction.prepare_cached(DELETE_ADDRESSES).await?;
    transaction.execute(&statement, &[&id]).await?;
    transaction.commit().await?;
    Ok(())
}

/// Builds the API's view of a customer from its fields and new ids.
pub fn customer_view(id: Uuid, customer: &ValidCustomer, address_ids: &[Uuid]) -> Customer {
    Customer {
        id,
        first_name: customer.first_name.clone(),
        last_name: customer.last_name.clone(),
        email: customer.email.clone(),
        addresses: customer
            .addresses
            .iter()
            .zip(address_ids)
            .map(|(address, id)| Address {
                id: *id,
                street: address.street.clone(),
                city: address.city.clone(),
                state: address.state.clone(),
                postal_code: address.postal_code.clone(),
                country: address.country.clone(),
                default: address.default,
            })
            .collect(),
    }
}

fn customer_from_row(row: &tokio_postgres::Row) -> Customer {
    Customer {
        id: row.get(0),
        first_name: row.get(1),
        last_name: row.get(2),
        email: row.get(3),
        addresses: Vec::new(),
    }
}

async fn load_addresses(
    transaction: &secret_pool::Transaction<'_>,
    customer_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Address>>, DbError> {
    let mut by_customer: HashMap<Uuid, Vec<Address>> = HashMap::new();
    if customer_ids.is_empty() {
        return Ok(by_customer);
    }
    let statement = transaction.prepare_cached(SELECT_ADDRESSES).await?;
    for row in transaction.query(&statement, &[&customer_ids]).await? {
        let customer_id: Uuid = row.get(1);
        by_customer.entry(customer_id).or_default().push(Address {
            id: row.get(0),
            street: row.get(2),
            city: row.get(3),
            state: row.get(4),
            postal_code: row.get(5),
            country: row.get(6),
            default: row.get(7),
        });
    }
    Ok(by_customer)
}

/// Inserts all addresses in one statement with one row of placeholders per
/// address; only placeholders are formatted into the SQL, never values.
async fn insert_addresses(
    transaction: &secret_pool::Transaction<'_>,
    customer_id: Uuid,
    addresses: &[ValidAddress],
    address_ids: &[Uuid],
) -> Result<(), DbError> {
    let positions: Vec<i16> = (0..addresses.len())
        .map(|index| i16::try_from(index).unwrap_or(i16::MAX))
        .collect();
    let mut sql = String::from(
        "INSERT INTO addresses (id, customer_id, street, city, state, postal_code, country, \
         is_default, sort_order) VALUES ",
    );
    let mut parameters: Vec<&(dyn ToSql + Sync)> = Vec::new();
    for (index, ((address, id), position)) in addresses
        .iter()
        .zip(address_ids)
        .zip(&positions)
        .enumerate()
    {
        let first = index * ADDRESS_COLUMNS + 1;
        let placeholders: Vec<String> = (first..first + ADDRESS_COLUMNS)
            .map(|number| format!("${number}"))
            .collect();
        if index > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&placeholders.join(", "));
        sql.push(')');
        parameters.extend([
            id as &(dyn ToSql + Sync),
            &customer_id,
            &address.street,
            &address.city,
            &address.state,
            &address.postal_code,
            &address.country,
            &address.default,
            position,
        ]);
    }
    let statement = transaction.prepare_cached(&sql).await?;
    transaction.execute(&statement, &parameters).await?;
    Ok(())
}
