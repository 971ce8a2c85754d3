//! Identity: people, roles, passwords, tokens, portal sessions and sign-in back-off.
//!
//! Owns the `users`, `departments`, `refresh_tokens`, `sessions`, `auth_throttle` and
//! `account_links` tables. Depends on the kernel, the web layer (its pages live in [`web`]), and
//! on notifications to send account emails.
#![forbid(unsafe_code)]

pub mod account_links;
pub mod api;
pub mod avatars;
pub mod batch;
pub mod jobs;
pub mod password;
pub mod service;
pub mod signin;
pub mod throttle;
pub mod users;
pub mod web;
