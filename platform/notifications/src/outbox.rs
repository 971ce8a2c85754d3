//! The outbox: messages written with the event that caused them, delivered by a job.
//!
//! A message is an `outbox` row (tenant data, behind row-level security) and a
//! `delivery_queue` row (its id, tenant and due time: what the job scans across tenants). The
//! job claims due entries for a few minutes (`for update skip locked` on PostgreSQL; SQLite's
//! write lock serializes claims), sends each one and records the outcome: sent (the queue entry
//! goes), a transient failure (due again after exponential back-off), or a permanent one or too
//! many attempts (failed, kept for the record). A claim that is never resolved — the instance
//! died mid-send — expires and the message is tried again; email carries the outbox id as its
//! `Message-ID`, so such a resend is recognisable as the same mail.

use std::time::Duration;

use sqlx::QueryBuilder;
use time::OffsetDateTime;
use trainflow_kernel::{
    db::{Conn, Db, TenantTx},
    sql, ApiResult, TenantId,
};
use uuid::Uuid;

use crate::{
    devices,
    push::{decode_keys, PushError, PushTransport, Subscription},
    transport::{Email, EmailTransport, SendError, SmsTransport},
};

/// A message to deliver.
#[derive(Debug, Clone)]
pub enum Message {
    Email {
        to: String,
        subject: String,
        text: String,
        html: Option<String>,
    },
    Sms {
        to: String,
        text: String,
    },
    /// A Web Push message to one device: `payload` is the JSON the portal's service worker
    /// shows (encrypted for the device when it is sent).
    Push {
        subscription: Uuid,
        title: String,
        payload: String,
    },
}

/// Writes `message` to the outbox inside the caller's transaction.
pub async fn enqueue(tx: &mut TenantTx, message: Message, now: OffsetDateTime) -> ApiResult<Uuid> {
    let id = Uuid::now_v7();
    enqueue_many(tx, &[(id, message)], now).await?;
    Ok(id)
}

/// Rows per multi-row statement: an outbox row binds 8 values, well under both backends'
/// limits on bound parameters (SQLite's 32,766, PostgreSQL's 65,535).
const ROWS_PER_STATEMENT: usize = 1000;

/// Writes `messages` (each with the id it is to carry) to the outbox inside the caller's
/// transaction: two multi-row statements (outbox rows, then queue entries) per
/// [`ROWS_PER_STATEMENT`] messages. Returns the number of statements issued.
pub async fn enqueue_many(
    tx: &mut TenantTx,
    messages: &[(Uuid, Message)],
    now: OffsetDateTime,
) -> ApiResult<u64> {
    let tenant = tx.tenant();
    let mut statements = 0;
    for chunk in messages.chunks(ROWS_PER_STATEMENT) {
        sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new(
                "insert into outbox (tenant_id, id, channel, recipient, subject, text_body, html_body, status, created_at) ");
            qb.push_values(chunk, |mut row, (id, message)| {
                let (channel, to, subject, text, html) = match message {
                    Message::Email { to, subject, text, html } => ("email", to.clone(), Some(subject), text, html.as_ref()),
                    Message::Sms { to, text } => ("sms", to.clone(), None, text, None),
                    Message::Push { subscription, title, payload } =>
                        ("push", subscription.to_string(), Some(title), payload, None),
                };
                row.push_bind(tenant).push_bind(*id).push_bind(channel).push_bind(to)
                    .push_bind(subject).push_bind(text).push_bind(html).push("'pending'").push_bind(now);
            });
            qb.build().execute(&mut *c).await.map(drop)
        })?;
        sql!(tx.conn() => |c| {
            let mut qb = QueryBuilder::new("insert into delivery_queue (id, tenant_id, next_attempt_at) ");
            qb.push_values(chunk, |mut row, (id, _)| {
                row.push_bind(*id).push_bind(tenant).push_bind(now);
            });
            qb.build().execute(&mut *c).await.map(drop)
        })?;
        statements += 2;
    }
    Ok(statements)
}

/// How delivery retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Wait after the first failure; doubles with each attempt.
    pub backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// Attempts before a message is marked failed.
    pub max_attempts: u32,
    /// How long a claim holds a message before another instance may take it.
    pub claim_for: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            max_attempts: 12,
            claim_for: Duration::from_secs(300),
        }
    }
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryOutcome {
    pub sent: u32,
    pub retrying: u32,
    pub failed: u32,
}

/// The delivery queue's backlog.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Messages not yet delivered or given up.
    pub waiting: i64,
    /// Of those, the ones due now (the rest wait for their back-off).
    pub due: i64,
    /// How long the longest-waiting due message has been due, in seconds (0 when none is).
    pub oldest_due_secs: i64,
}

/// Delivers the outbox.
#[derive(Clone)]
pub struct Deliverer {
    pub db: Db,
    pub email: EmailTransport,
    pub sms: SmsTransport,
    pub push: PushTransport,
    pub retry: RetryPolicy,
}

#[derive(sqlx::FromRow)]
struct Pending {
    channel: String,
    recipient: String,
    subject: Option<String>,
    text_body: String,
    html_body: Option<String>,
    status: String,
    attempts: i32,
}

impl Deliverer {
    /// Delivers every message due at `now`, in batches.
    pub async fn deliver_due(&self, now: OffsetDateTime) -> ApiResult<DeliveryOutcome> {
        self.deliver_due_for(None, now).await
    }

    /// [`Deliverer::deliver_due`], for one tenant's messages only when `tenant` is given.
    pub async fn deliver_due_for(
        &self,
        tenant: Option<TenantId>,
        now: OffsetDateTime,
    ) -> ApiResult<DeliveryOutcome> {
        let mut outcome = DeliveryOutcome::default();
        loop {
            let batch = self.claim(tenant, now, 50).await?;
            if batch.is_empty() {
                return Ok(outcome);
            }
            for (id, tenant) in batch {
                self.deliver_one(TenantId(tenant), id, now, &mut outcome)
                    .await?;
            }
        }
    }

    /// The queue at `now`: messages waiting, those due, and how long the longest-waiting due
    /// message has been due.
    pub async fn backlog(&self, now: OffsetDateTime) -> ApiResult<Backlog> {
        let mut tx = self.db.platform_tx().await?;
        let (waiting, due, oldest): (i64, i64, Option<OffsetDateTime>) = sql!(tx.conn() => |c| sqlx::query_as(
            "select count(*),
                    count(*) filter (where next_attempt_at <= $1),
                    min(next_attempt_at) filter (where next_attempt_at <= $1)
               from delivery_queue")
            .bind(now).fetch_one(&mut *c).await)?;
        tx.commit().await?;
        Ok(Backlog {
            waiting,
            due,
            oldest_due_secs: oldest.map_or(0, |t| (now - t).whole_seconds().max(0)),
        })
    }

    async fn claim(
        &self,
        tenant: Option<TenantId>,
        now: OffsetDateTime,
        limit: i64,
    ) -> ApiResult<Vec<(Uuid, Uuid)>> {
        let tenant = tenant.map(|t| t.0);
        let until = now + self.retry.claim_for;
        let mut tx = self.db.platform_tx().await?;
        let rows: Vec<(Uuid, Uuid)> = match tx.conn() {
            Conn::Postgres(c) => {
                sqlx::query_as(
                    "update delivery_queue set claimed_until = $2
                      where id in (select id from delivery_queue
                                    where next_attempt_at <= $1
                                      and (claimed_until is null or claimed_until < $1)
                                      and ($4 is null or tenant_id = $4)
                                    order by next_attempt_at limit $3
                                    for update skip locked)
                      returning id, tenant_id",
                )
                .bind(now)
                .bind(until)
                .bind(limit)
                .bind(tenant)
                .fetch_all(&mut *c)
                .await?
            }
            Conn::Sqlite(c) => {
                sqlx::query_as(
                    "update delivery_queue set claimed_until = $2
                      where id in (select id from delivery_queue
                                    where next_attempt_at <= $1
                                      and (claimed_until is null or claimed_until < $1)
                                      and ($4 is null or tenant_id = $4)
                                    order by next_attempt_at limit $3)
                      returning id, tenant_id",
                )
                .bind(now)
                .bind(until)
                .bind(limit)
                .bind(tenant)
                .fetch_all(&mut *c)
                .await?
            }
        };
        tx.commit().await?;
        Ok(rows)
    }

    async fn deliver_one(
        &self,
        tenant: TenantId,
        id: Uuid,
        now: OffsetDateTime,
        outcome: &mut DeliveryOutcome,
    ) -> ApiResult<()> {
        let mut tx = TenantTx::begin_system(&self.db, tenant).await?;
        let row: Option<Pending> = sql!(tx.conn() => |c| sqlx::query_as(
            "select channel, recipient, subject, text_body, html_body, status, attempts
               from outbox where tenant_id = $1 and id = $2")
            .bind(tenant).bind(id).fetch_optional(&mut *c).await)?;
        let Some(row) = row.filter(|r| r.status == "pending") else {
            // Already delivered or failed (or gone with its tenant): only the queue entry is left.
            tx.commit().await?;
            return self.dequeue(id).await;
        };
        let device = match row.channel.as_str() {
            "push" => match row.recipient.parse::<Uuid>() {
                Ok(device) => devices::find(&mut tx, device).await?,
                Err(_) => None,
            },
            _ => None,
        };
        tx.commit().await?;
        // The push subscription delivered to: (id, whether its service dropped it).
        let mut device_outcome = None;
        let sent = match row.channel.as_str() {
            "email" => {
                self.email
                    .send(&Email {
                        id,
                        to: &row.recipient,
                        subject: row.subject.as_deref().unwrap_or(""),
                        text: &row.text_body,
                        html: row.html_body.as_deref(),
                    })
                    .await
            }
            "push" => match device {
                None => Err(SendError::permanent(
                    "the device's subscription was removed before delivery",
                )),
                Some(device) => {
                    let sent = self.send_push(&device, &row.text_body, now).await;
                    match sent {
                        Ok(location) => {
                            device_outcome = Some((device.id, false));
                            Ok(location)
                        }
                        Err(PushError::Gone(message)) => {
                            device_outcome = Some((device.id, true));
                            Err(SendError::permanent(message))
                        }
                        Err(PushError::Failed(e)) => Err(e),
                    }
                }
            },
            _ => self.sms.send(&row.recipient, &row.text_body).await,
        };
        let attempts = row.attempts + 1;
        let mut tx = TenantTx::begin_system(&self.db, tenant).await?;
        match device_outcome {
            Some((device, true)) => devices::forget(&mut tx, device).await?,
            Some((device, false)) => devices::sent(&mut tx, device, now).await?,
            None => {}
        }
        match sent {
            Ok(provider_id) => {
                sql!(tx.conn() => |c| sqlx::query(
                    "update outbox set status = 'sent', attempts = $3, sent_at = $4, provider_id = $5, last_error = null
                      where tenant_id = $1 and id = $2")
                    .bind(tenant).bind(id).bind(attempts).bind(now).bind(&provider_id)
                    .execute(&mut *c).await.map(drop))?;
                sql!(tx.conn() => |c| sqlx::query("delete from delivery_queue where id = $1")
                    .bind(id).execute(&mut *c).await.map(drop))?;
                outcome.sent += 1;
            }
            Err(SendError { permanent, message }) => {
                let give_up = permanent || attempts as u32 >= self.retry.max_attempts;
                tracing::warn!(%id, channel = row.channel, attempts, give_up, error = %message, "delivery failed");
                let status = if give_up { "failed" } else { "pending" };
                sql!(tx.conn() => |c| sqlx::query(
                    "update outbox set status = $3, attempts = $4, last_error = $5 where tenant_id = $1 and id = $2")
                    .bind(tenant).bind(id).bind(status).bind(attempts).bind(&message)
                    .execute(&mut *c).await.map(drop))?;
                if give_up {
                    sql!(tx.conn() => |c| sqlx::query("delete from delivery_queue where id = $1")
                        .bind(id).execute(&mut *c).await.map(drop))?;
                    outcome.failed += 1;
                } else {
                    let next = now + self.backoff(attempts as u32);
                    sql!(tx.conn() => |c| sqlx::query(
                        "update delivery_queue set next_attempt_at = $2, claimed_until = null where id = $1")
                        .bind(id).bind(next).execute(&mut *c).await.map(drop))?;
                    outcome.retrying += 1;
                }
            }
        }
        tx.commit().await
    }

    /// Encrypts and posts one push message; its urgency follows the notification's priority.
    async fn send_push(
        &self,
        device: &devices::Stored,
        payload: &str,
        now: OffsetDateTime,
    ) -> Result<String, PushError> {
        let (p256dh, auth) = decode_keys(&device.p256dh, &device.auth)
            .map_err(|e| PushError::Gone(format!("the subscription's key {e}")))?;
        let urgency = match serde_json::from_str::<serde_json::Value>(payload)
            .ok()
            .as_ref()
            .and_then(|p| p["priority"].as_str().map(str::to_string))
            .as_deref()
        {
            Some("high") => "high",
            Some("low") => "low",
            _ => "normal",
        };
        self.push
            .send(
                &Subscription {
                    endpoint: &device.endpoint,
                    p256dh: &p256dh,
                    auth: &auth,
                },
                payload.as_bytes(),
                urgency,
                now.unix_timestamp(),
            )
            .await
    }

    async fn dequeue(&self, id: Uuid) -> ApiResult<()> {
        let mut tx = self.db.platform_tx().await?;
        sql!(tx.conn() => |c| sqlx::query("delete from delivery_queue where id = $1")
            .bind(id).execute(&mut *c).await.map(drop))?;
        tx.commit().await
    }

    /// The wait after `attempts` failures: `backoff × 2^(attempts-1)`, at most `max_backoff`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(16);
        (self.retry.backoff * factor).min(self.retry.max_backoff)
    }
}
