#![allow(clippy::expect_used, clippy::unwrap_used)] // tests may panic
//! The server's integration suite: every test boots the real server on port 0 and runs twice, against
//! a fresh SQLite file and a fresh PostgreSQL database.

mod helpers;

mod api;
mod app_config;
mod app_keys;
mod applications;
mod audit;
mod audit_review;
mod audit_streams;
mod csrf;
mod impersonation;
mod keys;
mod mail;
mod oidc;
mod openapi;
mod ops;
mod replicas;
mod roles;
mod sessions;
mod sign_in;
mod staff;
mod users;
