//! Rate limiting with governor, keyed per API key once authenticated and per client IP
//! before (so failed authentication attempts are limited too). Exceeding the quota gives
//! `429 TOO_MANY_REQUESTS` with `Retry-After`; API answers carry the caller's budget as
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (IETF draft
//! "RateLimit header fields for HTTP"). The keyed state is pruned periodically so it
//! cannot grow without bound.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::Quota;

use crate::db::Id;
use crate::error::ApiError;

/// What a request is counted against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LimitKey {
    /// An authenticated API key (its row id; the key itself is never kept).
    ApiKey(Id),
    /// A client address, for requests without a valid key.
    Ip(IpAddr),
}

type Keyed = governor::RateLimiter<
    LimitKey,
    DefaultKeyedStateStore<LimitKey>,
    DefaultClock,
    StateInformationMiddleware,
>;

pub struct RateLimiter {
    limiter: Option<Keyed>,
    /// Requests allowed in a burst (every key has the same quota).
    burst: u32,
}

/// A caller's budget after a request: what the `RateLimit-*` headers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Requests allowed in a burst.
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the budget is whole again.
    pub reset_secs: u64,
}

impl Budget {
    /// Sets the `RateLimit-*` headers.
    pub fn write(&self, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset_secs));
    }
}

impl RateLimiter {
    /// `None` disables limiting. The burst allows twice the per-second rate.
    pub fn new(per_second: Option<NonZeroU32>) -> Self {
        let burst =
            per_second.map(|n| n.saturating_mul(NonZeroU32::new(2).expect("2 is non-zero")));
        let limiter = per_second.zip(burst).map(|(n, burst)| {
            governor::RateLimiter::keyed(Quota::per_second(n).allow_burst(burst))
                .with_middleware::<StateInformationMiddleware>()
        });
        RateLimiter {
            limiter,
            burst: burst.map_or(0, NonZeroU32::get),
        }
    }

    /// Counts a request against `key`: its remaining budget (`None` when limiting is
    /// off), or a 429 (which carries the budget headers too).
    pub fn check(&self, key: &LimitKey) -> Result<Option<Budget>, ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(None);
        };
        match limiter.check_key(key) {
            Ok(snapshot) => {
                let quota = snapshot.quota();
                let remaining = snapshot.remaining_burst_capacity();
                let used = quota.burst_size().get().saturating_sub(remaining);
                let reset = quota.replenish_interval().as_secs_f64() * f64::from(used);
                Ok(Some(Budget {
                    limit: quota.burst_size().get(),
                    remaining,
                    reset_secs: reset.ceil() as u64,
                }))
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::too_many_requests(wait.as_secs_f64().ceil() as u64))
            }
        }
    }

    /// The answer to a request over budget: the 429 with the budget headers (nothing
    /// remaining, whole again after `Retry-After`).
    pub fn refusal(&self, e: ApiError) -> Response {
        crate::monitoring::rate_limited();
        let reset_secs = e.retry_after_secs.unwrap_or(1);
        let mut response = e.into_response();
        if self.limiter.is_some() {
            let budget = Budget {
                limit: self.burst,
                remaining: 0,
                reset_secs,
            };
            budget.write(response.headers_mut());
        }
        response
    }

    /// Forgets keys whose buckets are full again (idle callers).
    pub fn prune(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Number of keys currently tracked.
    pub fn tracked_keys(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }

    /// Prunes every `every` until the process ends.
    pub fn spawn_pruner(self: &Arc<Self>, every: Duration) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match me.upgrade() {
                    Some(l) => l.prune(),
                    None => return,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_prunes() {
        let rl = RateLimiter::new(NonZeroU32::new(1));
        let a = LimitKey::Ip("10.0.0.1".parse().unwrap());
        let b = LimitKey::Ip("10.0.0.2".parse().unwrap());
        assert!(rl.check(&a).is_ok());
        assert!(rl.check(&a).is_ok());
        let err = rl.check(&a).unwrap_err();
        assert_eq!(err.status.as_u16(), 429);
        assert!(err.retry_after_secs.unwrap() >= 1);
        assert!(rl.check(&b).is_ok());
        assert_eq!(rl.tracked_keys(), 2);
    }

    #[test]
    fn pruning_forgets_idle_keys() {
        // 1000/s: a used cell is back after 1 ms, so an idle key is prunable at once.
        let rl = RateLimiter::new(NonZeroU32::new(1000));
        for i in 0..100u8 {
            rl.check(&LimitKey::Ip([10, 0, 0, i].into())).unwrap();
        }
        assert_eq!(rl.tracked_keys(), 100);
        std::thread::sleep(Duration::from_millis(20));
        // A key that used most of its burst needs 1.5 s to refill: it must survive.
        let busy = LimitKey::Ip("10.0.1.1".parse().unwrap());
        for _ in 0..1500 {
            rl.check(&busy).unwrap();
        }
        rl.prune();
        assert_eq!(rl.tracked_keys(), 1);
        // Its budget was kept, not reset to a full burst.
        let passed = (0..700).filter(|_| rl.check(&busy).is_ok()).count();
        assert!(passed < 700, "{passed}");
    }

    #[test]
    fn off_means_unlimited() {
        let rl = RateLimiter::new(None);
        let a = LimitKey::Ip("10.0.0.1".parse().unwrap());
        for _ in 0..1000 {
            assert!(rl.check(&a).is_ok());
        }
    }
}
