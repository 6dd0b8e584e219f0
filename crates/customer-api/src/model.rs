//! The JSON shapes of customers and addresses. Input shapes accept nulls and
//! missing fields so that validation can report every problem at once;
//! unknown fields and wrong types are rejected while parsing.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A customer as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    /// Server-made id.
    pub id: Uuid,
    /// Given name, 2 to 50 characters.
    pub first_name: String,
    /// Family name, up to 50 characters; absent when not given.
    pub last_name: Option<String>,
    /// Lower-cased email, unique among customers.
    pub email: String,
    /// One to five addresses, the default one flagged.
    pub addresses: Vec<Address>,
}

/// An address as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// Server-made id.
    pub id: Uuid,
    /// Street and number.
    pub street: String,
    /// City.
    pub city: String,
    /// State, province or region.
    pub state: String,
    /// Postal code without white space, upper-cased.
    pub postal_code: String,
    /// Country.
    pub country: String,
    /// Whether this is the customer's default address.
    pub default: bool,
}

/// The body of `POST` and `PUT`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerInput {
    /// Ignored on `POST`; on `PUT` it must match the id in the path.
    pub id: Option<Uuid>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Addresses.
    pub addresses: Option<Vec<AddressInput>>,
}

/// One address in a request body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddressInput {
    /// Ignored: addresses are replaced as a whole and get new ids. It is
    /// still parsed so that a malformed id is reported.
    #[expect(
        dead_code,
        reason = "accepted on input so clients can send back what they read"
    )]
    pub id: Option<Uuid>,
    /// Street and number.
    pub street: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State, province or region.
    pub state: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Whether this is the default address; `isDefault` is accepted too.
    #[serde(alias = "isDefault")]
    pub default: Option<bool>,
}

/// `page` and `size` of a list request, before validation.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PageQuery {
    /// Zero-based page number.
    pub page: Option<String>,
    /// Customers per page.
    pub size: Option<String>,
}
