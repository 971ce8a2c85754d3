//! Identity: people, roles, passwords, tokens, portal sessions and sign-in back-off.
//!
//! Owns the `users`, `departments`, `refresh_tokens`, `sessions` and `auth_throttle` tables.
//! Depends only on the kernel.
#![forbid(unsafe_code)]

pub mod api;
pub mod jobs;
pub mod password;
pub mod service;
pub mod signin;
pub mod throttle;
pub mod users;
