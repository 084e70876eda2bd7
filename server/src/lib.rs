//! The Portcullis HTTP edge: configuration, startup, the dashboard's SSR and form endpoints, the
//! management REST API, operations endpoints and graceful shutdown. Domain work happens in `identity`.

pub mod audit_streams;
pub mod backchannel;
pub mod config;
pub mod http;
pub mod mailer;
pub mod metrics;
pub mod startup;
pub mod telemetry;

pub use config::Config;
pub use startup::Application;
