//! Field rules for customers, addresses and paging. Every rule that fails
//! adds a message under its field name, so one response lists all problems.
//!
//! Lengths count Unicode scalar values after trimming. Limits the API
//! description does not fix are chosen here: street 200 characters, city,
//! state and country 100, postal code 20, email 254 (the SMTP path limit).
//! Control characters (NUL included) are rejected in every text field
//! because PostgreSQL text cannot hold NUL.

use crate::error::FieldErrors;
use crate::model::{AddressInput, CustomerInput, PageQuery};

/// Maximum customers per page.
pub const MAX_PAGE_SIZE: i64 = 100;
/// Page size when none is given.
pub const DEFAULT_PAGE_SIZE: i64 = 20;
/// Maximum addresses per customer.
pub const MAX_ADDRESSES: usize = 5;

/// A customer whose fields passed every rule, normalised for storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidCustomer {
    /// Trimmed given name.
    pub first_name: String,
    /// Trimmed family name; `None` when absent or blank.
    pub last_name: Option<String>,
    /// Trimmed, lower-cased email.
    pub email: String,
    /// Addresses in request order, exactly one of them the default.
    pub addresses: Vec<ValidAddress>,
}

/// An address whose fields passed every rule, normalised for storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidAddress {
    /// Trimmed street.
    pub street: String,
    /// Trimmed city.
    pub city: String,
    /// Trimmed state.
    pub state: String,
    /// Postal code without white space, upper-cased.
    pub postal_code: String,
    /// Trimmed country.
    pub country: String,
    /// Whether this is the default address.
    pub default: bool,
}

/// A validated page request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Zero-based page number.
    pub number: i64,
    /// Customers per page, 1 to 100.
    pub size: i64,
}

struct Checker {
    errors: FieldErrors,
}

impl Checker {
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    /// Trims `value` and checks it is present and within `min..=max`
    /// characters; returns the trimmed text when it is acceptable.
    fn text(&mut self, field: &str, value: Option<&str>, min: usize, max: usize) -> Option<String> {
        let trimmed = value.map(str::trim).unwrap_or_default();
        if trimmed.is_empty() {
            if min > 0 {
                self.fail(field, "is required and must not be blank");
            }
            return None;
        }
        if trimmed.chars().any(char::is_control) {
            self.fail(field, "must not contain control characters");
            return None;
        }
        let length = trimmed.chars().count();
        if length < min || length > max {
            self.fail(field, format!("must be {min} to {max} characters long"));
            return None;
        }
        Some(trimmed.to_owned())
    }
}

/// Checks a customer body and normalises it.
pub fn customer(input: &CustomerInput) -> Result<ValidCustomer, FieldErrors> {
    let mut checker = Checker {
        errors: FieldErrors::new(),
    };
    let first_name = checker.text("firstName", input.first_name.as_deref(), 2, 50);
    let last_name = checker.text("lastName", input.last_name.as_deref(), 0, 50);
    let email = checker
        .text("email", input.email.as_deref(), 3, 254)
        .map(|email| email.to_lowercase());
    if let Some(email) = &email
        && !is_valid_email(email)
    {
        checker.fail(
            "email",
            "must be a valid email address such as name@example.com",
        );
    }

    let addresses = match &input.addresses {
        None => {
            checker.fail("addresses", "is required: give 1 to 5 addresses");
            Vec::new()
        }
        Some(list) if list.is_empty() || list.len() > MAX_ADDRESSES => {
            checker.fail("addresses", "must contain 1 to 5 addresses");
            Vec::new()
        }
        Some(list) => addresses(&mut checker, list),
    };

    match (first_name, email) {
        (Some(first_name), Some(email)) if checker.errors.is_empty() => Ok(ValidCustomer {
            first_name,
            last_name,
            email,
            addresses,
        }),
        _ => Err(checker.errors),
    }
}

fn addresses(checker: &mut Checker, list: &[AddressInput]) -> Vec<ValidAddress> {
    let mut valid = Vec::with_capacity(list.len());
    for (index, input) in list.iter().enumerate() {
        let field = |name: &str| format!("addresses[{index}].{name}");
        let street = checker.text(&field("street"), input.street.as_deref(), 1, 200);
        let city = checker.text(&field("city"), input.city.as_deref(), 1, 100);
        let state = checker.text(&field("state"), input.state.as_deref(), 1, 100);
        let country = checker.text(&field("country"), input.country.as_deref(), 1, 100);
        let postal_code = checker
            .text(&field("postalCode"), input.postal_code.as_deref(), 1, 20)
            .map(|code| {
                code.chars()
                    .filter(|c| !c.is_whitespace())
                    .collect::<String>()
                    .to_uppercase()
            });
        if let (Some(street), Some(city), Some(state), Some(postal_code), Some(country)) =
            (street, city, state, postal_code, country)
        {
            valid.push(ValidAddress {
                street,
                city,
                state,
                postal_code,
                country,
                default: input.default.unwrap_or(false),
            });
        }
    }

    let defaults = list
        .iter()
        .filter(|input| input.default == Some(true))
        .count();
    if defaults > 1 {
        checker.fail("addresses", "at most one address may be the default");
    } else if defaults == 0
        && let Some(first) = valid.first_mut()
    {
        first.default = true;
    }
    valid
}

/// Checks an email: one `@`, a local part of allowed characters without
/// leading, trailing or doubled dots, and a domain of at least two labels of
/// letters, digits and inner hyphens. Internationalised addresses are not
/// accepted.
fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

/// Checks `page` (zero or more) and `size` (1 to 100, default 20).
pub fn page(query: &PageQuery) -> Result<Page, FieldErrors> {
    let mut checker = Checker {
        errors: FieldErrors::new(),
    };
    let number = match query.page.as_deref().map(str::parse::<i64>) {
        None => Some(0),
        Some(Ok(number)) if (0..=1_000_000).contains(&number) => Some(number),
        Some(_) => {
            checker.fail("page", "must be a whole number from 0 to 1000000");
            None
        }
    };
    let size = match query.size.as_deref().map(str::parse::<i64>) {
        None => Some(DEFAULT_PAGE_SIZE),
        Some(Ok(size)) if (1..=MAX_PAGE_SIZE).contains(&size) => Some(size),
        Some(_) => {
            checker.fail("size", "must be a whole number from 1 to 100");
            None
        }
    };
    match (number, size) {
        (Some(number), Some(size)) => Ok(Page { number, size }),
        _ => Err(checker.errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(street: &str) -> AddressInput {
        AddressInput {
            street: Some(street.to_owned()),
            city: Some("Seattle".to_owned()),
            state: Some("WA".to_owned()),
            postal_code: Some(" 98 101 ab ".to_owned()),
            country: Some("US".to_owned()),
            ..AddressInput::default()
        }
    }

    fn input() -> CustomerInput {
        CustomerInput {
            first_name: Some("  Ada ".to_owned()),
            last_name: Some("Lovelace".to_owned()),
            email: Some(" Ada@Example.COM ".to_owned()),
            addresses: Some(vec![address("1 Main St")]),
            ..CustomerInput::default()
        }
    }

    #[test]
    fn valid_customer_is_normalised() {
        let customer = customer(&input()).unwrap();
        assert_eq!(customer.first_name, "Ada");
        assert_eq!(customer.email, "ada@example.com");
        assert_eq!(customer.addresses[0].postal_code, "98101AB");
        assert!(customer.addresses[0].default);
    }

    #[test]
    fn multibyte_name_limit_counts_characters() {
        let mut body = input();
        body.first_name = Some("é".repeat(50));
        assert!(customer(&body).is_ok());
        body.first_name = Some("é".repeat(51));
        assert!(customer(&body).unwrap_err().contains_key("firstName"));
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let body = CustomerInput {
            first_name: Some("A".to_owned()),
            last_name: Some("x".repeat(51)),
            email: Some("not-an-email".to_owned()),
            addresses: Some(vec![AddressInput::default()]),
            ..CustomerInput::default()
        };
        let errors = customer(&body).unwrap_err();
        for field in [
            "firstName",
            "lastName",
            "email",
            "addresses[0].street",
            "addresses[0].city",
            "addresses[0].state",
            "addresses[0].postalCode",
            "addresses[0].country",
        ] {
            assert!(errors.contains_key(field), "{field} missing in {errors:?}");
        }
    }

    #[test]
    fn two_default_addresses_are_rejected() {
        let mut body = input();
        let mut first = address("1 Main St");
        first.default = Some(true);
        body.addresses = Some(vec![first.clone(), first]);
        assert!(customer(&body).unwrap_err().contains_key("addresses"));
    }

    #[test]
    fn address_count_outside_range_is_rejected() {
        let mut body = input();
        body.addresses = Some(vec![]);
        assert!(customer(&body).unwrap_err().contains_key("addresses"));
        body.addresses = Some(vec![address("x"); 6]);
        assert!(customer(&body).unwrap_err().contains_key("addresses"));
    }

    #[test]
    fn nul_byte_is_rejected() {
        let mut body = input();
        body.first_name = Some("Ad\0a".to_owned());
        assert!(customer(&body).unwrap_err().contains_key("firstName"));
    }

    #[test]
    fn emails_are_checked() {
        for good in ["a@b.co", "first.last+tag@sub.example.org"] {
            assert!(is_valid_email(good), "{good}");
        }
        for bad in [
            "a@b", "@b.co", "a@@b.co", "a b@c.co", ".a@b.co", "a@-b.co", "a@b..co",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn page_bounds_are_checked() {
        let query = |page: &str, size: &str| PageQuery {
            page: Some(page.to_owned()),
            size: Some(size.to_owned()),
        };
        assert_eq!(
            page(&query("0", "100")),
            Ok(Page {
                number: 0,
                size: 100
            })
        );
        assert!(page(&query("0", "0")).unwrap_err().contains_key("size"));
        assert!(page(&query("0", "101")).unwrap_err().contains_key("size"));
        assert!(page(&query("-1", "5")).unwrap_err().contains_key("page"));
        assert!(page(&query("x", "5")).unwrap_err().contains_key("page"));
    }
}
