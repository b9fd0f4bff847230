//! The time source. Passed in everywhere a decision depends on "now", so
//! tests (and `--as-of`) can set it.

use time::OffsetDateTime;

pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that says what it is told; for tests.
#[derive(Debug)]
pub struct FixedClock(pub std::sync::Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn new(at: OffsetDateTime) -> Self {
        FixedClock(std::sync::Mutex::new(at))
    }

    pub fn advance(&self, by: time::Duration) {
        *self.0.lock().expect("clock lock") += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("clock lock")
    }
}
