//! Tenancy: tenant organisations and their settings, platform operators, and declarative
//! tenant manifests (`tenants/<slug>/tenant.toml`).
//!
//! Owns the `tenants`, `tenant_logos` and `platform_operators` tables. Depends on the kernel and identity.
#![forbid(unsafe_code)]

pub mod api;
pub mod logos;
pub mod manifest;
pub mod service;
pub mod tenants;
pub mod web;
