//! Rate limits per client address and per tenant (in process; each instance enforces its share),
//! on `governor`'s keyed GCRA limiter: a lock-free check per request, one small state per key.
//!
//! Keys come from clients, so the key map is kept bounded at constant amortised cost: every
//! [`CHECK_EVERY`] requests one of them looks at the map's size, and when it has passed the
//! bound (at least [`MIN_BOUND`], else twice what survived the last clean-up) or
//! [`CLEAN_EVERY`] has gone by, forgets every key whose bucket has refilled (indistinguishable
//! from a fresh key) and shrinks the map. A clean-up walks only keys used within the last
//! minute, each of which paid for its place with a request, so the work per request stays O(1)
//! amortised and memory stays proportional to the clients of the last minute.

use std::{
    num::NonZeroU32,
    sync::atomic::{AtomicU64, AtomicUsize, Ordering},
    time::Duration,
};

use governor::{
    clock::{Clock, DefaultClock, Reference},
    middleware::NoOpMiddleware,
    state::keyed::DefaultKeyedStateStore,
    Quota,
};

/// How many requests pass between two looks at the key map's size.
pub const CHECK_EVERY: u64 = 1024;
/// The key count below which no clean-up runs on account of size.
pub const MIN_BOUND: usize = 100_000;
/// The longest time between two clean-ups, while requests arrive.
pub const CLEAN_EVERY: Duration = Duration::from_secs(60);

type Keyed<C> = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

/// Token buckets keyed by address or tenant: `per_minute` requests a minute, with a burst of the
/// same size.
pub struct RateLimiter<C: Clock + Clone = DefaultClock> {
    limiter: Keyed<C>,
    clock: C,
    requests: AtomicU64,
    /// Clean up once the map holds this many keys.
    bound: AtomicUsize,
    /// When the last clean-up ran, in nanoseconds since `start`.
    cleaned_at: AtomicU64,
    start: C::Instant,
}

impl RateLimiter {
    /// `per_minute` requests a minute (at least 1), with a burst of the same size.
    pub fn new(per_minute: u32) -> Self {
        Self::with_clock(per_minute, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    /// Like [`RateLimiter::new`], on `clock` (tests use a fake one).
    pub fn with_clock(per_minute: u32, clock: C) -> Self {
        let quota =
            Quota::per_minute(NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN));
        let start = clock.now();
        Self {
            limiter: governor::RateLimiter::new(
                quota,
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ),
            clock,
            requests: AtomicU64::new(0),
            bound: AtomicUsize::new(MIN_BOUND),
            cleaned_at: AtomicU64::new(0),
            start,
        }
    }

    /// Takes a token for `key`; on refusal returns how long until one is available.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let outcome = self
            .limiter
            .check_key(&key.to_string())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()));
        if self.requests.fetch_add(1, Ordering::Relaxed) % CHECK_EVERY == CHECK_EVERY - 1 {
            self.housekeeping();
        }
        outcome
    }

    /// Keys currently held.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }

    /// Forgets the keys whose buckets are full again when the map passed its bound or the last
    /// clean-up is [`CLEAN_EVERY`] old.
    fn housekeeping(&self) {
        let now: u64 = self.clock.now().duration_since(self.start).as_u64();
        let last = self.cleaned_at.load(Ordering::Relaxed);
        let stale = now.saturating_sub(last) >= CLEAN_EVERY.as_nanos() as u64;
        if !stale && self.limiter.len() < self.bound.load(Ordering::Relaxed) {
            return;
        }
        // One caller cleans; the others go on.
        if self
            .cleaned_at
            .compare_exchange(last, now.max(last + 1), Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        self.clean_up();
    }

    /// Forgets every key whose bucket is full again, and shrinks the map.
    pub fn clean_up(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        self.bound
            .store((self.limiter.len() * 2).max(MIN_BOUND), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    #[test]
    fn a_burst_beyond_the_limit_is_refused_then_refills() {
        let clock = FakeRelativeClock::default();
        let l = RateLimiter::with_clock(60, clock.clone());
        for _ in 0..60 {
            assert!(l.check("a").is_ok());
        }
        let wait = l.check("a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(l.check("b").is_ok(), "other keys are independent");
        clock.advance(Duration::from_secs(2));
        assert!(l.check("a").is_ok());
    }

    #[test]
    fn idle_keys_are_forgotten_so_the_map_stays_bounded() {
        let clock = FakeRelativeClock::default();
        let l = RateLimiter::with_clock(600, clock.clone());
        for i in 0..5_000 {
            assert!(l.check(&format!("10.0.{}.{}", i / 256, i % 256)).is_ok());
        }
        assert_eq!(l.len(), 5_000);
        // A minute later every bucket is full again: the next clean-up forgets them all.
        clock.advance(CLEAN_EVERY + Duration::from_secs(1));
        for _ in 0..CHECK_EVERY {
            let _ = l.check("steady");
        }
        assert!(l.len() <= 1, "{} keys kept", l.len());
    }
}
