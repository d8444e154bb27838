//! Rate limiting with governor, keyed per API key once authenticated and per client IP
//! before (so failed authentication attempts are limited too). Exceeding the quota gives
//! `429 TOO_MANY_REQUESTS` with `Retry-After`. The keyed state is pruned periodically so
//! it cannot grow without bound.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

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

pub struct RateLimiter {
    limiter: Option<DefaultKeyedRateLimiter<LimitKey>>,
}

impl RateLimiter {
    /// `None` disables limiting. The burst allows twice the per-second rate.
    pub fn new(per_second: Option<NonZeroU32>) -> Self {
        let limiter = per_second.map(|n| {
            let burst = n.saturating_mul(NonZeroU32::new(2).expect("2 is non-zero"));
            governor::RateLimiter::keyed(Quota::per_second(n).allow_burst(burst))
        });
        RateLimiter { limiter }
    }

    pub fn check(&self, key: &LimitKey) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::too_many_requests(wait.as_secs_f64().ceil() as u64)
        })
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
