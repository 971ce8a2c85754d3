//! Per-request context that travels with the request's task: the request id.

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The current request id, or an empty string outside a request.
pub fn current_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}
