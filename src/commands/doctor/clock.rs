//! Check 9: this machine's clock against AWS's, read off the `Date` of the
//! answers doctor got.

use crate::access::{Check, Status};
use crate::aws::clock::{SIGNATURE_WINDOW, SIGNIFICANT, describe};

/// The clock check, from the offset (AWS's time minus this machine's, in
/// seconds) the last dated answer showed, if any did.
pub fn clock_check(observed: Option<i64>) -> Check {
    let c = |status, msg: String| Check::new(9, "clock", status, msg);
    let Some(offset) = observed else {
        return c(
            Status::Skip,
            "No answer from AWS carried a Date header, so this machine's clock could not be compared with AWS's.".into(),
        );
    };
    if offset.unsigned_abs() <= SIGNIFICANT.as_secs() {
        return c(
            Status::Pass,
            format!(
                "{} (to within a second or two, by the Date of AWS's answers).",
                describe(offset)
            ),
        );
    }
    let refused = if offset.unsigned_abs() > SIGNATURE_WINDOW.as_secs() {
        format!(
            "AWS refuses a signature more than {} min off (EC2 answers RequestExpired)",
            SIGNATURE_WINDOW.as_secs() / 60
        )
    } else {
        "a tunnel's signed URL is good for 60 s only, so the endpoint may refuse it".into()
    };
    c(
        Status::Warn,
        format!(
            "{}: {refused}. eic-ssh signs with AWS's time once AWS refuses its own, but other tools (the AWS CLI, SDKs) may fail from this machine.",
            describe(offset)
        ),
    )
    .fix("set the clock right: turn on NTP (timedatectl set-ntp true); after a laptop's sleep or on WSL2 it may need a resync (sudo hwclock -s, or wsl --shutdown from Windows)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_passes_in_step_and_warns_when_off() {
        assert_eq!(clock_check(None).status, Status::Skip);
        let ok = clock_check(Some(-1));
        assert_eq!(ok.status, Status::Pass);
        assert!(
            ok.message
                .starts_with("this machine's clock is 1 s ahead of AWS's"),
            "{}",
            ok.message
        );
        let url = clock_check(Some(200));
        assert_eq!(url.status, Status::Warn);
        assert!(
            url.message.contains("3 min behind") && url.message.contains("60 s"),
            "{}",
            url.message
        );
        let far = clock_check(Some(-10_920));
        assert_eq!(far.status, Status::Warn);
        assert!(
            far.message
                .starts_with("this machine's clock is 3 h 2 min ahead of AWS's: AWS refuses"),
            "{}",
            far.message
        );
        assert!(
            far.fix
                .unwrap_or_default()
                .contains("timedatectl set-ntp true")
        );
    }
}
