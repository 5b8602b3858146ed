//! Retries and polls bounded by the lab's [`Timing`](crate::Timing).

use std::future::Future;
use std::time::{Duration, Instant};

use super::Lab;
use super::report::{Event, OnEvent};
use crate::Error;

impl Lab {
    /// Runs `f` until it succeeds or fails for good, backing off on retryable errors
    /// (throttling, "in use", `DependencyViolation`) until the timeout.
    pub(crate) async fn retry<T, F, Fut>(
        &self,
        on: OnEvent<'_>,
        what: &str,
        mut f: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let start = Instant::now();
        let mut delay = self.timing.interval;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && start.elapsed() < self.timing.timeout => {
                    on(&Event::Retrying {
                        what: what.to_owned(),
                        attempt,
                        error: e.to_string(),
                    });
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.timing.interval.max(Duration::from_secs(30)));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`Lab::retry`] for a delete: a resource already gone counts as deleted.
    pub(crate) async fn retry_gone<T, F, Fut>(
        &self,
        on: OnEvent<'_>,
        what: &str,
        mut f: F,
    ) -> Result<(), Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        self.retry(on, what, || {
            let call = f();
            async move {
                match call.await {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_not_found() => Ok(()),
                    Err(e) => Err(e),
                }
            }
        })
        .await
    }

    /// Polls `f` until it says done, or the timeout.
    pub(crate) async fn poll_until<F, Fut>(&self, what: &str, mut f: F) -> Result<(), Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool, Error>>,
    {
        let start = Instant::now();
        loop {
            if f().await? {
                return Ok(());
            }
            if start.elapsed() > self.timing.timeout {
                return Err(Error::Timeout {
                    what: what.to_owned(),
                    seconds: self.timing.timeout.as_secs(),
                });
            }
            tokio::time::sleep(self.timing.interval).await;
        }
    }
}
