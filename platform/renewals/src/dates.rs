//! Dates: a tenant's today, a cycle's status, and the timeline of future cycles.

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime};

/// Where a certification cycle stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not expiring within the renewal window.
    Valid,
    /// Within the renewal window, not yet expired.
    Expiring,
    /// Past its expiry date.
    Expired,
    /// Replaced by a newer cycle.
    Renewed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Expiring => "expiring",
            Status::Expired => "expired",
            Status::Renewed => "renewed",
        }
    }
}

/// The status of a cycle on `today`. A certification is valid through its expiry date.
pub fn status(today: Date, expires_on: Option<Date>, window_days: i32, renewed: bool) -> Status {
    match expires_on {
        _ if renewed => Status::Renewed,
        None => Status::Valid,
        Some(e) if today > e => Status::Expired,
        Some(e) if today >= e - Duration::days(i64::from(window_days)) => Status::Expiring,
        Some(_) => Status::Valid,
    }
}

/// Today in the IANA time zone `tz` (UTC when the zone is unknown).
pub fn local_today(tz: &str, now: OffsetDateTime) -> Date {
    let offset = tz
        .parse::<chrono_tz::Tz>()
        .ok()
        .and_then(|zone| {
            use chrono::{Offset, TimeZone};
            let utc = chrono::DateTime::from_timestamp(now.unix_timestamp(), 0)?;
            let seconds = zone
                .offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc();
            time::UtcOffset::from_whole_seconds(seconds).ok()
        })
        .unwrap_or(time::UtcOffset::UTC);
    now.to_offset(offset).date()
}

/// `date` plus `months` calendar months, clamped to the month's last day (31 Jan + 1 = 28/29 Feb).
pub fn add_months(date: Date, months: i32) -> Date {
    let total = date.year() * 12 + (date.month() as i32 - 1) + months;
    let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
    let month = Month::try_from(month0 as u8 + 1).expect("0..12");
    let last = time::util::days_in_month(month, year);
    Date::from_calendar_date(year, month, date.day().min(last)).expect("valid date")
}

/// The expiry of a cycle issued on `issued_on` (none for certifications that do not expire).
pub fn expiry(issued_on: Date, validity_months: Option<i32>) -> Option<Date> {
    validity_months.map(|m| add_months(issued_on, m) - Duration::days(1))
}

/// The reminder offsets, sorted from the earliest (largest) down, without duplicates.
pub fn normalise_offsets(mut offsets: Vec<i32>) -> Vec<i32> {
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    offsets.dedup();
    offsets
}

/// One future cycle of a certification type.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize)]
pub struct Cycle {
    pub number: u32,
    pub issued_on: Date,
    /// When a renewal may be requested (the renewal window opens).
    pub window_opens_on: Date,
    /// The reminder dates, earliest first.
    pub reminders: Vec<Date>,
    pub expires_on: Date,
}

/// The next `count` cycles from `start`, each renewed on its expiry day's morrow.
pub fn timeline(
    start: Date,
    validity_months: i32,
    window_days: i32,
    offsets: &[i32],
    count: u32,
) -> Vec<Cycle> {
    let mut issued = start;
    let mut out = Vec::new();
    for number in 1..=count {
        let expires = add_months(issued, validity_months) - Duration::days(1);
        let reminders = normalise_offsets(offsets.to_vec())
            .into_iter()
            .map(|o| expires - Duration::days(i64::from(o)))
            .filter(|d| *d >= issued)
            .collect();
        out.push(Cycle {
            number,
            issued_on: issued,
            window_opens_on: (expires - Duration::days(i64::from(window_days))).max(issued),
            reminders,
            expires_on: expires,
        });
        issued = expires + Duration::days(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn status_follows_the_dates_and_the_window() {
        let e = Some(date!(2026 - 12 - 31));
        assert_eq!(status(date!(2026 - 10 - 01), e, 90, false), Status::Valid);
        assert_eq!(
            status(date!(2026 - 10 - 02), e, 90, false),
            Status::Expiring
        );
        assert_eq!(
            status(date!(2026 - 12 - 31), e, 90, false),
            Status::Expiring
        );
        assert_eq!(status(date!(2027 - 01 - 01), e, 90, false), Status::Expired);
        assert_eq!(status(date!(2027 - 01 - 01), e, 90, true), Status::Renewed);
        assert_eq!(
            status(date!(2027 - 01 - 01), None, 90, false),
            Status::Valid
        );
    }

    #[test]
    fn today_is_the_tenants_date_not_utcs() {
        let now = datetime!(2026-11-22 23:30 UTC);
        assert_eq!(local_today("UTC", now), date!(2026 - 11 - 22));
        assert_eq!(local_today("Asia/Tokyo", now), date!(2026 - 11 - 23));
        assert_eq!(
            local_today("America/New_York", datetime!(2026-11-23 03:00 UTC)),
            date!(2026 - 11 - 22)
        );
        assert_eq!(local_today("Not/AZone", now), date!(2026 - 11 - 22));
    }

    #[test]
    fn months_clamp_to_the_end_of_shorter_months() {
        assert_eq!(add_months(date!(2026 - 01 - 31), 1), date!(2026 - 02 - 28));
        assert_eq!(add_months(date!(2027 - 12 - 15), 26), date!(2030 - 02 - 15));
        assert_eq!(
            expiry(date!(2026 - 03 - 01), Some(12)),
            Some(date!(2027 - 02 - 28))
        );
    }

    #[test]
    fn a_timeline_chains_cycles_with_their_window_and_reminders() {
        let t = timeline(date!(2026 - 01 - 01), 12, 60, &[7, 30, 90, 30], 2);
        assert_eq!(t[0].expires_on, date!(2026 - 12 - 31));
        assert_eq!(t[0].window_opens_on, date!(2026 - 11 - 01));
        assert_eq!(
            t[0].reminders,
            vec![
                date!(2026 - 10 - 02),
                date!(2026 - 12 - 01),
                date!(2026 - 12 - 24)
            ]
        );
        assert_eq!(t[1].issued_on, date!(2027 - 01 - 01));
        assert_eq!(t[1].number, 2);
    }
}
