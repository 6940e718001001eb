//! AWS's clock, as this process knows it. SigV4 allows a signature 5
//! minutes either way, and the tunnel's presigned URL 60 s after it is
//! signed; a laptop after sleep, WSL2 or a small VM drifts further. Every
//! answer's `Date` header tells AWS's time: on a refusal for time, the
//! offset it shows is kept for the rest of the process, and every signature
//! after it uses the corrected time: the API calls through the SDK's time
//! source ([`Corrected`]), retried once by [`TimeRefusal`], and the
//! presigned URL through [`ServiceClock::now`].
//!
//! The SDK's own correction is turned off: it corrects some codes but not
//! EC2's `RequestExpired`, never a presigned URL, and each client apart;
//! two corrections on top of each other would sign twice as far off.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use aws_smithy_async::time::TimeSource;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
    InterceptorContext,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_smithy_types::retry::ErrorKind;

use crate::error::Error;

/// How long a SigV4 signature is good for, either way.
pub const SIGNATURE_WINDOW: Duration = Duration::from_secs(5 * 60);

/// A gap between a signature's time and AWS's this large is worth
/// correcting: the presigned URL is good for 60 s only.
pub const SIGNIFICANT: Duration = Duration::from_secs(30);

/// Codes that say the request's time was refused, whatever its signature.
const TIME_CODES: [&str; 3] = [
    "RequestExpired",
    "RequestTimeTooSkewed",
    "RequestInTheFuture",
];

/// Codes that a time outside the window also gets (from JSON services:
/// `InvalidSignatureException` "Signature expired"), besides a bad
/// signature: a time refusal only when the `Date` shows the gap.
const SIGNATURE_CODES: [&str; 3] = [
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "AuthFailure",
];

/// What this process knows of AWS's clock.
#[derive(Debug, Default)]
pub struct ServiceClock {
    /// Milliseconds to add to this machine's clock to sign as AWS expects,
    /// once a refusal taught it.
    correction_ms: AtomicI64,
    /// The offset (AWS's minus this machine's, in ms) the last dated
    /// answer showed, and whether any did.
    observed_ms: AtomicI64,
    observed: AtomicBool,
    /// The correction was said (once, at `-v`).
    said: AtomicBool,
}

impl ServiceClock {
    /// The time to sign with: this machine's clock, corrected.
    pub fn now(&self) -> SystemTime {
        shift(SystemTime::now(), self.correction_ms())
    }

    /// Milliseconds added to this machine's clock when signing.
    pub fn correction_ms(&self) -> i64 {
        self.correction_ms.load(Ordering::Relaxed)
    }

    /// The offset the last dated answer showed: AWS's time minus this
    /// machine's, in seconds, rounded.
    pub fn observed_secs(&self) -> Option<i64> {
        self.observed
            .load(Ordering::Relaxed)
            .then(|| round_secs(self.observed_ms.load(Ordering::Relaxed)))
    }

    fn observe(&self, offset_ms: i64) {
        self.observed_ms.store(offset_ms, Ordering::Relaxed);
        self.observed.store(true, Ordering::Relaxed);
    }

    /// Sign with AWS's time from now on: this machine's clock plus
    /// `offset_ms`. The first correction is said once, at `-v`.
    pub fn correct(&self, offset_ms: i64) {
        self.correction_ms.store(offset_ms, Ordering::Relaxed);
        if !self.said.swap(true, Ordering::Relaxed) {
            tracing::info!(
                "{}, so AWS refused the signature's time; signing with AWS's time from now on",
                describe(round_secs(offset_ms))
            );
        }
    }
}

/// `t` moved by `ms` milliseconds, either way.
pub fn shift(t: SystemTime, ms: i64) -> SystemTime {
    let by = Duration::from_millis(ms.unsigned_abs());
    match ms >= 0 {
        true => t.checked_add(by),
        false => t.checked_sub(by),
    }
    .unwrap_or(t)
}

fn round_secs(ms: i64) -> i64 {
    (ms + ms.signum() * 500) / 1000
}

/// AWS's time minus this machine's, in ms, from an answer's `Date` and the
/// times (this machine's) the request left and the answer came. The
/// service stamped it about halfway; `Date` is cut to the second, so its
/// middle is half a second later.
pub fn offset_ms(date: SystemTime, sent: SystemTime, received: SystemTime) -> i64 {
    let half = received.duration_since(sent).unwrap_or_default() / 2;
    let local = sent + half;
    let service = date + Duration::from_millis(500);
    match service.duration_since(local) {
        Ok(ahead) => i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX),
        Err(behind) => -i64::try_from(behind.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Whether a gap between a signature's time and AWS's is worth correcting.
pub fn significant(gap_ms: i64) -> bool {
    gap_ms.unsigned_abs() > SIGNIFICANT.as_millis() as u64
}

/// This machine's clock against AWS's, as people say it: `this machine's
/// clock is 3 h 2 min behind AWS's` (`offset_secs` is AWS's time minus
/// this machine's).
pub fn describe(offset_secs: i64) -> String {
    let abs = offset_secs.unsigned_abs();
    if abs == 0 {
        return "this machine's clock agrees with AWS's".into();
    }
    let amount = if abs < 60 {
        format!("{abs} s")
    } else {
        let minutes = (abs + 30) / 60;
        match (minutes / 60, minutes % 60) {
            (0, m) => format!("{m} min"),
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        }
    };
    let way = if offset_secs > 0 {
        "behind"
    } else {
        "ahead of"
    };
    format!("this machine's clock is {amount} {way} AWS's")
}

/// The SDK's clock: this machine's, corrected by what AWS taught.
#[derive(Debug, Clone)]
pub struct Corrected(pub Arc<ServiceClock>);

impl TimeSource for Corrected {
    fn now(&self) -> SystemTime {
        self.0.now()
    }
}

/// What an answer showed of AWS's clock, kept on the answer for
/// [`TimeRefusal`] and for the error it may become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// AWS's time minus this machine's, in ms, from its `Date`; `None`
    /// when it had no usable one.
    pub offset_ms: Option<i64>,
    /// The correction the request was signed with, in ms.
    pub signed_with_ms: i64,
}

#[derive(Debug, Clone, Copy)]
struct SignedWith(i64);
impl Storable for SignedWith {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug, Clone, Copy)]
struct SentAt(SystemTime);
impl Storable for SentAt {
    type Storer = StoreReplace<Self>;
}

/// Reads AWS's time off every answer: kept as the last observation (for
/// `doctor`), and put on the answer as [`Measured`].
#[derive(Debug)]
pub struct Learner(pub Arc<ServiceClock>);

impl Intercept for Learner {
    fn name(&self) -> &'static str {
        "eic-ssh clock learner"
    }

    fn read_before_signing(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(SignedWith(self.0.correction_ms()));
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(SentAt(SystemTime::now()));
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let received = SystemTime::now();
        let sent = cfg.load::<SentAt>().map_or(received, |s| s.0);
        let signed_with_ms = cfg
            .load::<SignedWith>()
            .map_or_else(|| self.0.correction_ms(), |s| s.0);
        let headers = ctx.response().headers();
        // A cached answer's Date is old news (RFC 9111 `Age`).
        let date = headers
            .get("date")
            .filter(|_| headers.get("age").is_none())
            .and_then(|d| httpdate::parse_http_date(d).ok());
        let offset_ms = date.map(|d| offset_ms(d, sent, received));
        if let Some(ms) = offset_ms {
            self.0.observe(ms);
        }
        ctx.response_mut().add_extension(Measured {
            offset_ms,
            signed_with_ms,
        });
        Ok(())
    }
}

/// Retries, once corrected, a request AWS refused for its time: the answer
/// is an error whose code says so, and its `Date` shows a significant gap
/// from the time the request was signed with.
#[derive(Debug)]
pub struct TimeRefusal(pub Arc<ServiceClock>);

impl ClassifyRetry for TimeRefusal {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        if !matches!(ctx.output_or_error(), Some(Err(_))) {
            return RetryAction::NoActionIndicated;
        }
        let Some(response) = ctx.response() else {
            return RetryAction::NoActionIndicated;
        };
        let Some(Measured {
            offset_ms: Some(offset),
            signed_with_ms,
        }) = response.extension::<Measured>().copied()
        else {
            return RetryAction::NoActionIndicated;
        };
        let code = error_code(response);
        let time_code = code
            .as_deref()
            .is_some_and(|c| TIME_CODES.contains(&c) || SIGNATURE_CODES.contains(&c));
        if !time_code || !significant(offset - signed_with_ms) {
            return RetryAction::NoActionIndicated;
        }
        self.0.correct(offset);
        RetryAction::retryable_error(ErrorKind::ServerError)
    }

    fn name(&self) -> &'static str {
        "eic-ssh time refusal"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// The service's error code in a refusal: `x-amzn-ErrorType` (JSON
/// services), else the body's `<Code>` (EC2's XML) or `__type` (JSON).
/// A retry classifier sees the answer, not the SDK's parsed error.
pub fn error_code(response: &HttpResponse) -> Option<String> {
    let clean = |s: &str| {
        let s = s.split(':').next().unwrap_or(s);
        s.rsplit('#').next().unwrap_or(s).trim().to_owned()
    };
    if let Some(t) = response.headers().get("x-amzn-errortype") {
        return Some(clean(t));
    }
    let body = std::str::from_utf8(response.body().bytes()?).ok()?;
    if let Some((_, rest)) = body.split_once("<Code>") {
        return rest.split_once("</Code>").map(|(code, _)| clean(code));
    }
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    ["__type", "code"]
        .iter()
        .find_map(|k| json.get(k).and_then(|v| v.as_str()))
        .map(clean)
}

/// A refusal for time, as the error the user sees; `None` when the service
/// refused for another reason. `Measured` is what the answer showed.
pub fn refusal(
    op: &'static str,
    code: &str,
    message: &str,
    measured: Option<Measured>,
) -> Option<Error> {
    let offset = measured.and_then(|m| m.offset_ms);
    let gap = measured.and_then(|m| m.offset_ms.map(|o| o - m.signed_with_ms));
    let refused = TIME_CODES.contains(&code)
        || (SIGNATURE_CODES.contains(&code)
            && gap.is_some_and(|g| g.unsigned_abs() > SIGNATURE_WINDOW.as_millis() as u64));
    if !refused {
        return None;
    }
    let corrected = measured.is_some_and(|m| m.signed_with_ms != 0);
    Some(Error::ClockRefused {
        op,
        code: code.to_owned(),
        message: message.to_owned(),
        clock: clock_words(offset.map(round_secs), corrected),
    })
}

/// Why a time refusal could not be corrected, in words.
fn clock_words(offset_secs: Option<i64>, corrected: bool) -> String {
    match (offset_secs, corrected) {
        (Some(o), false) => describe(o),
        (Some(o), true) => format!("{}, and signing with AWS's time did not help", describe(o)),
        (None, _) => format!(
            "this machine's clock is probably more than {} min off AWS's, and the answer carried no Date header to tell by how much",
            SIGNATURE_WINDOW.as_secs() / 60
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;

    #[test]
    fn offsets_read_as_people_say_them() {
        let cases = [
            (10_920, "this machine's clock is 3 h 2 min behind AWS's"),
            (-10_800, "this machine's clock is 3 h ahead of AWS's"),
            (420, "this machine's clock is 7 min behind AWS's"),
            (-419, "this machine's clock is 7 min ahead of AWS's"),
            (45, "this machine's clock is 45 s behind AWS's"),
            (0, "this machine's clock agrees with AWS's"),
        ];
        for (secs, words) in cases {
            assert_eq!(describe(secs), words, "{secs}");
        }
    }

    #[test]
    fn the_offset_is_measured_at_the_middle_of_the_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        // Sent at t, answered at t+2 s, stamped t+421 s by AWS (a Date cut
        // to the second): AWS is 7 min ahead, to within the second.
        let ms = offset_ms(t + Duration::from_secs(421), t, t + Duration::from_secs(2));
        assert_eq!(ms, 420_500);
        assert_eq!(round_secs(ms), 421);
        assert_eq!(round_secs(-420_400), -420);
        let ms = offset_ms(t - Duration::from_secs(10_800), t, t);
        assert_eq!(round_secs(ms), -10_800);
        assert_eq!(shift(t, -1500), t - Duration::from_millis(1500));
        assert!(significant(31_000) && significant(-31_000) && !significant(29_000));
    }

    #[test]
    fn the_correction_moves_the_clock_everyone_signs_with() {
        let clock = Arc::new(ServiceClock::default());
        let source = Corrected(clock.clone());
        assert_eq!(clock.observed_secs(), None);
        let before = SystemTime::now();
        clock.correct(-3 * 3600 * 1000);
        let now = source.now();
        assert!(now < before - Duration::from_secs(3 * 3600 - 5), "{now:?}");
        assert!(now > before - Duration::from_secs(3 * 3600 + 5), "{now:?}");
        clock.observe(7_400);
        assert_eq!(clock.observed_secs(), Some(7));
    }

    fn answer(headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut b = http::Response::builder().status(400);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(SdkBody::from(body.to_owned()))
            .unwrap()
            .try_into()
            .unwrap()
    }

    #[test]
    fn the_code_is_read_from_each_protocols_refusal() {
        let ec2 = answer(
            &[],
            "<?xml version=\"1.0\"?>\n<Response><Errors><Error><Code>RequestExpired</Code><Message>Request has expired.</Message></Error></Errors><RequestID>r</RequestID></Response>",
        );
        assert_eq!(error_code(&ec2).as_deref(), Some("RequestExpired"));
        let json = answer(
            &[(
                "x-amzn-ErrorType",
                "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/",
            )],
            "{}",
        );
        assert_eq!(
            error_code(&json).as_deref(),
            Some("InvalidSignatureException")
        );
        let typed = answer(
            &[],
            r#"{"__type":"com.amazon.coral.service#InvalidSignatureException","message":"Signature expired"}"#,
        );
        assert_eq!(
            error_code(&typed).as_deref(),
            Some("InvalidSignatureException")
        );
        assert_eq!(error_code(&answer(&[], "not an error body")), None);
    }

    #[test]
    fn only_a_time_refusal_becomes_a_clock_error() {
        let seen = |offset_ms, signed_with_ms| {
            Some(Measured {
                offset_ms,
                signed_with_ms,
            })
        };
        // RequestExpired says so itself, with or without a Date.
        let e = refusal(
            "DescribeInstances",
            "RequestExpired",
            "Request has expired.",
            seen(Some(10_920_000), 0),
        )
        .unwrap();
        assert_eq!(
            e.to_string(),
            "DescribeInstances failed: RequestExpired: Request has expired.: this machine's clock is 3 h 2 min behind AWS's"
        );
        let hint = e.hint().unwrap();
        assert!(
            hint.contains("clock") && !hint.contains("credentials"),
            "{hint}"
        );
        let e = refusal(
            "DescribeInstances",
            "RequestExpired",
            "Request has expired.",
            seen(None, 0),
        )
        .unwrap();
        assert!(e.to_string().ends_with("more than 5 min off AWS's, and the answer carried no Date header to tell by how much"), "{e}");
        let e = refusal(
            "DescribeInstances",
            "RequestExpired",
            "m",
            seen(Some(-420_000), -420_000),
        )
        .unwrap();
        assert!(
            e.to_string()
                .ends_with("7 min ahead of AWS's, and signing with AWS's time did not help"),
            "{e}"
        );
        // A signature code is about time only when the Date shows the gap.
        let e = refusal(
            "SendSSHPublicKey",
            "InvalidSignatureException",
            "Signature expired: …",
            seen(Some(-420_000), 0),
        );
        assert!(e.is_some());
        assert!(
            refusal(
                "SendSSHPublicKey",
                "InvalidSignatureException",
                "bad secret",
                seen(Some(2_000), 0)
            )
            .is_none()
        );
        assert!(
            refusal(
                "SendSSHPublicKey",
                "InvalidSignatureException",
                "bad secret",
                seen(None, 0)
            )
            .is_none()
        );
        assert!(
            refusal(
                "DescribeInstances",
                "UnauthorizedOperation",
                "no",
                seen(Some(10_920_000), 0)
            )
            .is_none()
        );
    }
}
