//! Back-off after failed sign-ins, per account and per client address.
//!
//! After a few free failures each further failure doubles the wait (capped), so guessing is
//! slow but a legitimate user is never locked out for good. State lives in the database so all
//! instances agree.

use time::{Duration, OffsetDateTime};
use trainflow_kernel::{db::Db, secret::sha256_hex, sql, ApiError, ApiResult};

/// Free failures per account before back-off starts.
pub const ACCOUNT_FREE_FAILURES: i32 = 5;
/// Free failures per client address before back-off starts.
pub const IP_FREE_FAILURES: i32 = 20;
/// The longest wait.
pub const MAX_BLOCK: Duration = Duration::minutes(15);
/// Failures older than this are forgotten.
pub const WINDOW: Duration = Duration::hours(1);

/// The throttle keys of one attempt.
pub struct Keys {
    account: String,
    ip: Option<String>,
}

impl Keys {
    /// Keys for (tenant, email) and the client address.
    pub fn new(tenant_slug: &str, email: &str, ip: Option<&str>) -> Self {
        Self {
            // Normalised exactly as sign-in normalises them, so spelling variants share a key.
            account: sha256_hex(
                format!(
                    "account:{}:{}",
                    tenant_slug.trim().to_lowercase(),
                    email.trim().to_lowercase()
                )
                .as_bytes(),
            ),
            ip: ip.map(|ip| sha256_hex(format!("ip:{ip}").as_bytes())),
        }
    }

    fn all(&self) -> Vec<(&str, i32)> {
        let mut keys = vec![(self.account.as_str(), ACCOUNT_FREE_FAILURES)];
        if let Some(ip) = &self.ip {
            keys.push((ip.as_str(), IP_FREE_FAILURES));
        }
        keys
    }
}

/// Refuses with 429 and Retry-After while either key is blocked.
pub async fn check(db: &Db, keys: &Keys, now: OffsetDateTime) -> ApiResult<()> {
    let mut tx = db.platform_tx().await?;
    for (key, _) in keys.all() {
        let blocked: Option<Option<OffsetDateTime>> = sql!(tx.conn() => |c| sqlx::query_scalar(
            "select blocked_until from auth_throttle where key = $1")
            .bind(key).fetch_optional(&mut *c).await)?;
        if let Some(Some(until)) = blocked {
            if until > now {
                let secs = (until - now).whole_seconds().max(1) as u64;
                return Err(ApiError::TooManyRequests { retry_after: secs });
            }
        }
    }
    tx.commit().await
}

/// Records a failure against both keys.
pub async fn record_failure(db: &Db, keys: &Keys, now: OffsetDateTime) -> ApiResult<()> {
    let mut tx = db.platform_tx().await?;
    for (key, free) in keys.all() {
        let previous: Option<(i32, OffsetDateTime)> = sql!(tx.conn() => |c| sqlx::query_as(
            "select failures, updated_at from auth_throttle where key = $1")
            .bind(key).fetch_optional(&mut *c).await)?;
        let failures = match previous {
            Some((n, at)) if now - at < WINDOW => n + 1,
            _ => 1,
        };
        let blocked_until = block_for(failures, free).map(|d| now + d);
        sql!(tx.conn() => |c| sqlx::query(
            "insert into auth_throttle (key, failures, blocked_until, updated_at) values ($1, $2, $3, $4)
             on conflict (key) do update set failures = $2, blocked_until = $3, updated_at = $4")
            .bind(key).bind(failures).bind(blocked_until).bind(now).execute(&mut *c).await.map(drop))?;
    }
    tx.commit().await
}

/// Clears the account key after a successful sign-in (the address key decays on its own).
pub async fn record_success(db: &Db, keys: &Keys) -> ApiResult<()> {
    let mut tx = db.platform_tx().await?;
    sql!(tx.conn() => |c| sqlx::query("delete from auth_throttle where key = $1")
        .bind(&keys.account).execute(&mut *c).await.map(drop))?;
    tx.commit().await
}

/// How long the `failures`-th failure blocks: nothing for the free ones, then 1 s, 2 s, 4 s …
/// up to [`MAX_BLOCK`].
pub fn block_for(failures: i32, free: i32) -> Option<Duration> {
    let over = failures - free;
    if over <= 0 {
        return None;
    }
    let secs = 1i64
        .checked_shl((over - 1).min(20) as u32)
        .unwrap_or(i64::MAX);
    Some(Duration::seconds(secs).min(MAX_BLOCK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failures_are_free() {
        assert_eq!(block_for(5, 5), None);
    }

    #[test]
    fn each_further_failure_doubles_the_wait() {
        assert_eq!(block_for(6, 5), Some(Duration::seconds(1)));
        assert_eq!(block_for(7, 5), Some(Duration::seconds(2)));
        assert_eq!(block_for(9, 5), Some(Duration::seconds(8)));
    }

    #[test]
    fn the_wait_is_capped_never_permanent() {
        assert_eq!(block_for(1000, 5), Some(MAX_BLOCK));
    }
}
