#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is a failed test

mod adapters;
mod audit;
mod auth;
mod bank;
mod docs;
mod errors;
mod events;
mod fintech;
mod graphql;
mod health;
mod helpers;
mod kafka;
mod ledger_store;
mod metrics;
mod mobility;
mod openapi;
mod outage;
mod payments;
mod privacy;
mod process;
mod proxy;
mod ratelimit;
mod ride_store;
mod rides;
mod supervision;
