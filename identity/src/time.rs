//! Time as milliseconds since the Unix epoch. Domain functions take `now` as a parameter so that
//! expiry rules are testable without sleeping; only the edges call [`Timestamp::now`].

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Self(ms)
    }

    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0 + secs * 1000)
    }

    pub const fn minus_secs(self, secs: i64) -> Self {
        Self(self.0 - secs * 1000)
    }

    /// RFC 3339 in UTC, e.g. `2026-11-30T18:33:59.123Z`.
    pub fn rfc3339(self) -> String {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&format).ok())
            .unwrap_or_default()
    }

    /// A UTC date (`2026-11-30`, midnight), date-time as browsers' inputs send it
    /// (`2026-11-30T18:33`, `2026-11-30T18:33:59`), or RFC 3339 (`…Z`, offsets allowed).
    pub fn parse_utc(input: &str) -> Option<Self> {
        use time::macros::format_description as fd;
        let input = input.trim();
        let from = |t: time::OffsetDateTime| {
            i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
                .ok()
                .map(Self)
        };
        if let Ok(t) =
            time::OffsetDateTime::parse(input, &time::format_description::well_known::Rfc3339)
        {
            return from(t);
        }
        for format in [
            fd!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
            fd!("[year]-[month]-[day]T[hour]:[minute]"),
        ] {
            if let Ok(t) = time::PrimitiveDateTime::parse(input, format) {
                return from(t.assume_utc());
            }
        }
        time::Date::parse(input, fd!("[year]-[month]-[day]"))
            .ok()
            .and_then(|d| from(d.midnight().assume_utc()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_what_browsers_and_people_send() {
        use super::Timestamp;
        let day = Timestamp::parse_utc("2026-11-30").map(Timestamp::millis);
        assert_eq!(day, Some(1_795_996_800_000));
        let local = Timestamp::parse_utc("2026-11-30T01:02").map(Timestamp::millis);
        assert_eq!(local, Some(1_795_996_800_000 + 3_720_000));
        let rfc = Timestamp::parse_utc("2026-11-30T01:02:03.5Z").map(Timestamp::millis);
        assert_eq!(rfc, Some(1_795_996_800_000 + 3_723_500));
        assert_eq!(Timestamp::parse_utc("30/11/2026"), None);
    }

    use super::*;

    #[test]
    fn formats_as_rfc3339_utc() {
        assert_eq!(
            Timestamp::from_millis(1_764_527_639_123).rfc3339(),
            "2025-11-30T18:33:59.123Z"
        );
    }

    #[test]
    fn adds_and_subtracts_seconds() {
        let t = Timestamp::from_millis(10_000);
        assert_eq!(t.plus_secs(5).millis(), 15_000);
        assert_eq!(t.minus_secs(5).millis(), 5_000);
    }
}
