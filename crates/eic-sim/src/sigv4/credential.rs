//! The credential scope (`AKID/date/region/service/aws4_request`) and the
//! principal it names.

use super::{AuthError, Expected, Identity};

/// The parsed `Credential=` value.
#[derive(Debug)]
pub(super) struct Scope<'a> {
    pub(super) access_key_id: &'a str,
    pub(super) date: &'a str,
    pub(super) region: &'a str,
    pub(super) service: &'a str,
}

impl<'a> Scope<'a> {
    /// Splits `AKID/date/region/service/aws4_request`.
    pub(super) fn parse(credential: &'a str) -> Result<Self, AuthError> {
        let parts: Vec<&str> = credential.split('/').collect();
        match parts.as_slice() {
            [akid, date, region, service, terminator] => {
                if *terminator != "aws4_request" {
                    return Err(AuthError::WrongScope(format!(
                        "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
                    )));
                }
                Ok(Scope {
                    access_key_id: akid,
                    date,
                    region,
                    service,
                })
            }
            _ => Err(AuthError::Malformed(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
            ))),
        }
    }

    /// The scope as it appears in the string to sign (without the key id).
    pub(super) fn text(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }

    /// Checks everything about the scope except the key itself.
    pub(super) fn check(&self, amz_date: &str, expected: &Expected<'_>) -> Result<(), AuthError> {
        if !amz_date.starts_with(self.date) || self.date.len() != 8 {
            return Err(AuthError::WrongScope(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
                self.date,
                amz_date.get(..8).unwrap_or(amz_date)
            )));
        }
        if self.region != expected.region {
            return Err(AuthError::WrongScope(format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                self.region
            )));
        }
        if self.service != expected.service {
            return Err(AuthError::WrongScope(format!(
                "Credential should be scoped to correct service: '{}'. ",
                expected.service
            )));
        }
        Ok(())
    }
}

/// The identity with access key id `akid`.
pub(super) fn find_identity<'i>(
    identities: &'i [Identity],
    akid: &str,
) -> Result<&'i Identity, AuthError> {
    identities
        .iter()
        .find(|i| i.access_key_id == akid)
        .ok_or(AuthError::UnknownKey)
}

/// The session token presented must be exactly the identity's, if any.
pub(super) fn check_token(identity: &Identity, presented: Option<&str>) -> Result<(), AuthError> {
    match (&identity.session_token, presented) {
        (None, None) => Ok(()),
        (Some(want), Some(got)) if want == got => Ok(()),
        _ => Err(AuthError::BadToken),
    }
}
