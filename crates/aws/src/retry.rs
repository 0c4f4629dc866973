//! Pacing for the batch APIs whose callers retry by hand: exponential backoff with
//! jitter, and a client-side token bucket.
//!
//! PutEvents and BatchImportFindings succeed as calls while single entries fail, so the
//! SDK's retries never see those failures; the adapters retry them here. The adapters
//! run on blocking threads (the ports are synchronous), so waiting is a plain thread
//! sleep, made swappable so tests can count the waits instead of sitting through them.

use crate::error::Error;
use muster_core::ports::FailedFinding;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a wait is carried out: `std::thread::sleep` unless a test records it instead.
pub type Sleep = Arc<dyn Fn(Duration) + Send + Sync>;

fn thread_sleep() -> Sleep {
    Arc::new(std::thread::sleep)
}

/// A random number in `0..=max` without a random-number crate: `RandomState` is seeded
/// from the OS once per thread and stepped for every instance, which is all jitter needs
/// (callers spread out, nobody needs it unpredictable).
fn jitter(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    let mut h = RandomState::new().build_hasher();
    h.write_u64(max);
    h.finish() % (max + 1)
}

/// Bounded exponential backoff with "equal jitter": the n-th retry waits between half
/// and all of `min(cap, base · 2ⁿ)`, so retries that collided once spread apart while
/// each still waits long enough for throttling to ease.
#[derive(Clone)]
pub struct Backoff {
    /// Calls in all, the first included (at least 1).
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    sleep: Sleep,
}

impl std::fmt::Debug for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backoff")
            .field("attempts", &self.attempts)
            .field("base", &self.base)
            .field("cap", &self.cap)
            .finish()
    }
}

impl Default for Backoff {
    /// Five calls, waiting about 0.1 s, 0.2 s, 0.4 s and 0.8 s between them: under two
    /// seconds in all, well inside a Lambda's time, and then the invocation is retried.
    fn default() -> Self {
        Backoff::new(5, Duration::from_millis(100), Duration::from_secs(5))
    }
}

impl Backoff {
    pub fn new(attempts: u32, base: Duration, cap: Duration) -> Self {
        Backoff {
            attempts: attempts.max(1),
            base,
            cap,
            sleep: thread_sleep(),
        }
    }

    /// Waits with `sleep` instead of sleeping the thread (tests).
    pub fn with_sleep(mut self, sleep: Sleep) -> Self {
        self.sleep = sleep;
        self
    }

    /// The wait before retry number `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.cap);
        let ms = ceiling.as_millis() as u64;
        Duration::from_millis(ms / 2 + jitter(ms - ms / 2))
    }

    /// Sleeps before retry number `retry`.
    pub fn wait(&self, retry: u32) {
        (self.sleep)(self.delay(retry));
    }
}

/// A token bucket: `rate` calls a second on average, up to `burst` at once. One per
/// process and service, shared by every call, so concurrent imports stay under the
/// service's limit together instead of each throttling the other.
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
    sleep: Sleep,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: rate.max(0.001),
            burst,
            state: Mutex::new((burst, Instant::now())),
            sleep: thread_sleep(),
        }
    }

    pub fn with_sleep(mut self, sleep: Sleep) -> Self {
        self.sleep = sleep;
        self
    }

    /// Takes a token at `now` and says how long the caller must wait before using it.
    /// The token is taken even when it is not there yet (the balance goes negative), so
    /// callers that arrive together queue up in order instead of all waking at once.
    pub fn reserve(&self, now: Instant) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = *state;
        let elapsed = now.saturating_duration_since(last).as_secs_f64();
        let available = (tokens + elapsed * self.rate).min(self.burst) - 1.0;
        *state = (available, now.max(last));
        if available >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-available / self.rate)
        }
    }

    /// Waits until a call may be made.
    pub fn acquire(&self) {
        let wait = self.reserve(Instant::now());
        if !wait.is_zero() {
            (self.sleep)(wait);
        }
    }
}

/// Error codes that name a passing condition: throttling, or a fault on the service's
/// side. Everything else a service refuses (bad input, access denied, a missing bus)
/// stays refused however often it is asked.
pub fn transient_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "LimitExceededException"
            | "LimitExceeded"
            | "RequestLimitExceeded"
            | "InternalFailure"
            | "InternalException"
            | "InternalError"
            | "InternalServerError"
            | "InternalServerException"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "ConcurrentUpdateError"
            | "RequestTimeout"
            | "RequestTimeoutException"
    )
}

/// Classifies a failed SDK call of `service`'s `operation` (after the SDK's own retries,
/// when it has any): its code, and whether the same call may succeed later.
pub fn call_error<E>(
    service: &'static str,
    operation: &'static str,
    err: aws_sdk_securityhub::error::SdkError<E, aws_sdk_securityhub::config::http::HttpResponse>,
) -> crate::Error
where
    E: aws_sdk_securityhub::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_securityhub::error::{DisplayErrorContext, SdkError};
    let (code, retryable) = match &err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().map(str::to_owned);
            let status = ctx.raw().status().as_u16();
            let retryable = code.as_deref().is_some_and(transient_code)
                || status >= 500
                || status == 429
                || status == 408;
            (code, retryable)
        }
        // The request was never built: a bug or a bad argument, not a passing fault.
        SdkError::ConstructionFailure(_) => (None, false),
        // Timeouts, connection failures and unreadable responses pass.
        _ => (None, true),
    };
    crate::Error::Service {
        service,
        operation,
        code,
        message: DisplayErrorContext(&err).to_string(),
        retryable,
    }
}

/// The error code Security Hub gives a whole call it refuses as invalid input.
pub const INVALID_INPUT: &str = "InvalidInputException";

/// Sends one batch of Security Hub findings through `call` (BatchImportFindings or
/// BatchUpdateFindings), which answers with the findings it refused. Each call first
/// takes a token from `limiter`.
///
/// - Refused findings whose code can pass (throttling, internal failure, a concurrent
///   update) are sent again after a backoff, up to `backoff.attempts` calls; still
///   refused then, they are returned with `retryable: true`.
/// - Refused findings with any other code are returned with `retryable: false`.
/// - A call that fails as a whole is retried when its error can pass; if it still fails,
///   that is the error (retryable). A whole call refused as invalid input fails its
///   findings only; any other refusal (access denied, Security Hub not enabled) is the
///   error, as no finding can get through.
pub fn send_findings_batch<T, F>(
    mut pending: Vec<T>,
    id_of: impl Fn(&T) -> &str,
    backoff: &Backoff,
    limiter: &TokenBucket,
    mut call: F,
) -> Result<Vec<FailedFinding>, Error>
where
    F: FnMut(&[T]) -> Result<Vec<FailedFinding>, Error>,
{
    let mut failed = Vec::new();
    let mut transient: Vec<FailedFinding> = Vec::new();
    for attempt in 0..backoff.attempts {
        if attempt > 0 {
            backoff.wait(attempt - 1);
        }
        limiter.acquire();
        let refused = match call(&pending) {
            Ok(refused) => refused,
            Err(e) if e.is_retryable() && attempt + 1 < backoff.attempts => continue,
            Err(e) if e.is_retryable() => return Err(e),
            Err(Error::Service {
                code: Some(code),
                message,
                ..
            }) if code == INVALID_INPUT => {
                failed.extend(pending.iter().map(|f| FailedFinding {
                    id: id_of(f).to_owned(),
                    error_code: code.clone(),
                    error_message: message.clone(),
                    retryable: false,
                }));
                return Ok(failed);
            }
            Err(e) => return Err(e),
        };
        transient.clear();
        for mut r in refused {
            r.retryable = transient_code(&r.error_code);
            if r.retryable && pending.iter().any(|f| id_of(f) == r.id) {
                transient.push(r);
            } else {
                r.retryable = false;
                failed.push(r);
            }
        }
        pending.retain(|f| transient.iter().any(|t| t.id == id_of(f)));
        if pending.is_empty() {
            break;
        }
    }
    failed.extend(transient);
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_service_faults_are_transient_bad_input_is_not() {
        let cases = [
            ("ThrottlingException", true),
            ("TooManyRequestsException", true),
            ("LimitExceededException", true),
            ("InternalFailure", true),
            ("InternalException", true),
            ("ConcurrentUpdateError", true),
            ("InvalidInput", false),
            ("InvalidInputException", false),
            ("InvalidArgument", false),
            ("MalformedDetail", false),
            ("AccessDeniedException", false),
            ("InvalidAccessException", false),
            ("FindingSizeExceeded", false),
            ("NotAuthorizedForSourceException", false),
        ];
        for (code, want) in cases {
            assert_eq!(transient_code(code), want, "{code}");
        }
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_in_the_upper_half() {
        let b = Backoff::new(5, Duration::from_millis(100), Duration::from_millis(500));
        let cases = [(0, 100), (1, 200), (2, 400), (3, 500), (10, 500), (40, 500)];
        for (retry, ceiling) in cases {
            for _ in 0..50 {
                let d = b.delay(retry).as_millis() as u64;
                assert!(
                    (ceiling / 2..=ceiling).contains(&d),
                    "retry {retry}: {d} ms"
                );
            }
        }
        let spread: std::collections::HashSet<u128> =
            (0..50).map(|_| b.delay(3).as_millis()).collect();
        assert!(spread.len() > 1, "no jitter: {spread:?}");
    }

    #[test]
    fn token_bucket_allows_the_burst_then_paces_at_the_rate() {
        let bucket = TokenBucket::new(10.0, 30);
        let t0 = Instant::now();
        let waits: Vec<Duration> = (0..33).map(|_| bucket.reserve(t0)).collect();
        assert!(waits[..30].iter().all(|w| w.is_zero()), "{waits:?}");
        // The 31st call waits one token's time, the next ones queue behind it.
        let ms: Vec<u128> = waits[30..].iter().map(|w| w.as_millis()).collect();
        assert_eq!(ms, vec![100, 200, 300]);
        // A second later ten tokens are back, minus the three borrowed.
        let t1 = t0 + Duration::from_secs(1);
        let later: Vec<bool> = (0..8).map(|_| bucket.reserve(t1).is_zero()).collect();
        assert_eq!(later, [true, true, true, true, true, true, true, false]);
        // Idle long enough, the bucket refills to the burst and no further.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..31).filter(|_| bucket.reserve(t2).is_zero()).count(), 30);
    }
}
