//! The response envelope (`{"data": …, "meta": …}`) and pagination.

use poem_openapi::{
    payload::Json,
    types::{ParseFromJSON, ToJSON},
    ApiResponse, Object,
};

use crate::ApiError;

/// Default page size (the User Management System's 10).
pub const DEFAULT_PER_PAGE: u32 = 10;
/// Largest page size.
pub const MAX_PER_PAGE: u32 = 100;

/// `{"data": T}`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Data<T: ParseFromJSON + ToJSON> {
    /// The object.
    pub data: T,
}

/// `{"data": [T], "meta": {…}}`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct List<T: ParseFromJSON + ToJSON> {
    /// One page of objects.
    pub data: Vec<T>,
    /// Where this page is.
    pub meta: PageMeta,
}

/// Position of a page in a list.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PageMeta {
    /// 1-based page number.
    pub page: u32,
    /// Page size.
    pub per_page: u32,
    /// Objects matching the filters, over all pages.
    pub total: i64,
    /// Number of pages.
    pub total_pages: i64,
}

/// 200 with `{"data": T}`.
pub type Ok200<T> = Json<Data<T>>;

/// Wraps `value` as `{"data": value}`.
pub fn ok<T: ParseFromJSON + ToJSON>(value: T) -> Ok200<T> {
    Json(Data { data: value })
}

/// 201 Created with `{"data": T}`.
#[derive(ApiResponse)]
pub enum Created<T: ParseFromJSON + ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<Data<T>>),
}

/// Wraps `value` as a 201 answer.
pub fn created<T: ParseFromJSON + ToJSON + Send + Sync>(value: T) -> Created<T> {
    Created::Created(Json(Data { data: value }))
}

/// 204 No Content.
#[derive(ApiResponse)]
pub enum NoContent {
    /// Done; nothing to return.
    #[oai(status = 204)]
    NoContent,
}

/// A validated page request.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// 1-based page number.
    pub page: u32,
    /// Page size.
    pub per_page: u32,
}

impl Page {
    /// Validates `page` (≥ 1) and `per_page` (1–100, default 10).
    pub fn parse(page: Option<u32>, per_page: Option<u32>) -> Result<Self, ApiError> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
        if page == 0 || page > 1_000_000 {
            return Err(ApiError::field("page", "must be between 1 and 1000000"));
        }
        if per_page == 0 || per_page > MAX_PER_PAGE {
            return Err(ApiError::field(
                "per_page",
                format!("must be between 1 and {MAX_PER_PAGE}"),
            ));
        }
        Ok(Self { page, per_page })
    }

    /// SQL `limit`.
    pub fn limit(&self) -> i64 {
        i64::from(self.per_page)
    }

    /// SQL `offset`.
    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }

    /// Builds the list answer.
    pub fn list<T: ParseFromJSON + ToJSON>(&self, data: Vec<T>, total: i64) -> Json<List<T>> {
        let per = i64::from(self.per_page);
        Json(List {
            data,
            meta: PageMeta {
                page: self.page,
                per_page: self.per_page,
                total,
                total_pages: (total + per - 1) / per,
            },
        })
    }
}

/// Parses a `sort` parameter such as `-created_at` against the allowed columns, returning the
/// SQL column and direction. Unknown columns are a validation error, never interpolated.
pub fn parse_sort(
    raw: Option<&str>,
    allowed: &[(&str, &'static str)],
    default: (&'static str, bool),
) -> Result<(&'static str, bool), ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(default);
    };
    let (name, desc) = match raw.strip_prefix('-') {
        Some(rest) => (rest, true),
        None => (raw, false),
    };
    allowed
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, col)| (*col, desc))
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
            ApiError::field(
                "sort",
                format!(
                    "must be one of {} (prefix - for descending)",
                    names.join(", ")
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_page_defaults_to_ten_and_caps_at_one_hundred() {
        assert_eq!(Page::parse(None, None).unwrap().per_page, 10);
        assert!(Page::parse(None, Some(101)).is_err());
        assert!(Page::parse(Some(0), None).is_err());
    }

    #[test]
    fn offset_follows_the_page() {
        let p = Page::parse(Some(3), Some(20)).unwrap();
        assert_eq!((p.limit(), p.offset()), (20, 40));
    }

    #[test]
    fn sort_accepts_only_listed_columns() {
        let allowed = [("email", "email"), ("created_at", "created_at")];
        assert_eq!(
            parse_sort(Some("-email"), &allowed, ("created_at", false)).unwrap(),
            ("email", true)
        );
        assert!(parse_sort(Some("password_hash"), &allowed, ("created_at", false)).is_err());
    }
}
