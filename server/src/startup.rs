//! Builds the application: database, router, listener; runs it until a shutdown signal.

use crate::config::Config;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use anyhow::Context;
use app::ssr::ServerCtx;
use app::{App, shell};
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use identity::Identity;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub struct Application {
    listener: TcpListener,
    router: Router,
    pub state: AppState,
}

impl Application {
    pub async fn build(mut config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding {}", config.addr))?;
        let local = listener.local_addr()?;
        let public_url: Arc<str> = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local}"))
            .into();
        // The OpenID issuer is the public URL, exactly as clients see it.
        config.settings.issuer = public_url.to_string();
        let identity = Identity::open(
            &config.database_url,
            config.settings.clone(),
            config.master_key()?,
        )
        .await
        .context("opening the database")?;
        let leptos_options = LeptosOptions::builder()
            .output_name("portcullis")
            .site_root(config.site_root.as_str())
            .site_pkg_dir("pkg")
            .site_addr(local)
            .build();
        let state = AppState {
            identity,
            config: Arc::new(config),
            public_url,
            leptos_options,
            metrics: Arc::new(Metrics::default()),
        };
        if let Some(url) = &state.config.smtp_url {
            crate::mailer::spawn(
                state.identity.clone(),
                url.clone(),
                state.config.mail_from.clone(),
                std::time::Duration::from_secs(2),
            );
        }
        // Rotations made elsewhere (another replica, the CLI) reach this one within a minute; the
        // JWKS publishes each next key from the rotation before, so verifiers already know it.
        let keys_of = state.identity.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                if let Err(e) = identity::keys::reload(&keys_of).await {
                    tracing::warn!(error = %app::ssr::error_chain(&e), "reloading signing keys failed");
                }
            }
        });
        // Impersonations end at their time limit and undecided requests expire, on every replica.
        let sweeper = state.identity.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                if let Err(e) =
                    identity::impersonation::sweep(&sweeper, identity::Timestamp::now()).await
                {
                    tracing::warn!(error = %app::ssr::error_chain(&e), "impersonation sweep failed");
                }
            }
        });
        crate::backchannel::spawn(
            state.identity.clone(),
            state.config.allow_private_outbound,
            std::time::Duration::from_millis(500),
        );
        crate::audit_streams::spawn(
            state.identity.clone(),
            state.config.allow_private_outbound,
            std::time::Duration::from_millis(500),
        );
        // Retention: hourly on every replica (a purge takes the chain's lock, so they take turns and
        // the later ones find nothing to do). Old delivery-log rows of audit streams go too.
        let keeper = state.identity.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                let now = identity::Timestamp::now();
                let days = keeper.settings().audit_retention_days;
                if let Err(e) = identity::audit_retention::apply(&keeper, days, now).await {
                    tracing::warn!(error = %app::ssr::error_chain(&e), "audit retention failed");
                }
                if let Err(e) = identity::audit_streams::prune_deliveries(&keeper, 30, now).await {
                    tracing::warn!(error = %app::ssr::error_chain(&e), "pruning stream deliveries failed");
                }
                tokio::time::sleep(std::time::Duration::from_secs(3540)).await;
            }
        });
        let router = router(state.clone());
        Ok(Self {
            listener,
            router,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn public_url(&self) -> &str {
        &self.state.public_url
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let identity = self.state.identity.clone();
        // No Nagle delay: SSR pages stream in chunks, and a delayed ACK on a keep-alive connection
        // otherwise adds ~40 ms to a response (seen in the applications benchmark).
        use axum::serve::ListenerExt;
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "could not set TCP_NODELAY");
            }
        });
        axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        identity.db().close().await;
        Ok(())
    }
}

fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let server_ctx = ServerCtx {
        identity: state.identity.clone(),
        public_url: state.public_url.to_string(),
    };
    let options = state.leptos_options.clone();
    Router::new()
        .merge(http::ops::router())
        .merge(http::auth::router())
        .merge(http::hosted::router(state.clone()))
        .merge(http::oidc::router())
        .merge(http::api::router())
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(server_ctx.clone()),
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn_with_state(state.clone(), http::edge::dashboard_edge))
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                // The path only: query strings can carry one-time tokens.
                let request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    state
        .metrics
        .observe_request(&method, res.status().as_u16(), start.elapsed());
    res
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down gracefully");
}
