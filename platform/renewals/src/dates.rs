//! Dates: a tenant's today, a cycle's status, and the timeline of future cycles.

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Deserializer, Serialize};
use time::{macros::date, Date, Duration, Month, OffsetDateTime};

/// The earliest date TrainFlow accepts or computes.
pub const MIN_DATE: Date = date!(1900 - 01 - 01);
/// The latest date TrainFlow accepts or computes. Every date a request sends, and every date
/// computed from one (expiries, renewal windows, timelines), lies in `MIN_DATE..=MAX_DATE`, far
/// inside what the date arithmetic can represent.
pub const MAX_DATE: Date = date!(2999 - 12 - 31);
/// The message of a date outside the range.
pub const RANGE_MESSAGE: &str = "must be between 1900-01-01 and 2999-12-31";

/// A computed date would fall outside `MIN_DATE..=MAX_DATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange;

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the result would fall outside 1900-01-01 to 2999-12-31")
    }
}

/// `date` when it lies in `MIN_DATE..=MAX_DATE`.
pub fn in_range(date: Date) -> Result<Date, OutOfRange> {
    if (MIN_DATE..=MAX_DATE).contains(&date) {
        Ok(date)
    } else {
        Err(OutOfRange)
    }
}

/// `date` plus `days` (negative: minus), when the result lies in the range.
pub fn add_days(date: Date, days: i64) -> Result<Date, OutOfRange> {
    // The whole range is about 400,000 days: anything larger cannot land in it (and stays far
    // from overflowing the duration's seconds).
    if days.unsigned_abs() > 1_000_000 {
        return Err(OutOfRange);
    }
    date.checked_add(Duration::days(days))
        .ok_or(OutOfRange)
        .and_then(in_range)
}

/// Deserialises a date of request bodies, refusing one outside the range
/// (`#[serde(deserialize_with = "dates::request_date")]`).
pub fn request_date<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
    let date = Date::deserialize(d)?;
    in_range(date).map_err(|_| serde::de::Error::custom(RANGE_MESSAGE))
}

/// [`request_date`] for optional dates (`#[serde(default, deserialize_with = …)]`).
pub fn request_date_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
    match Option::<Date>::deserialize(d)? {
        Some(date) => in_range(date)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(RANGE_MESSAGE)),
        None => Ok(None),
    }
}

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
        // A window reaching before the earliest representable date covers every today.
        Some(e)
            if e.checked_sub(Duration::days(i64::from(window_days)))
                .is_none_or(|opens| today >= opens) =>
        {
            Status::Expiring
        }
        Some(_) => Status::Valid,
    }
}

/// Today in the IANA time zone `tz` (UTC when the zone is unknown).
pub fn local_today(tz: &str, now: OffsetDateTime) -> Date {
    now.to_offset(trainflow_kernel::zone_offset(tz, now)).date()
}

/// `date` plus `months` calendar months, clamped to the month's last day (31 Jan + 1 = 28/29 Feb);
/// an error when the result falls outside the range.
pub fn add_months(date: Date, months: i32) -> Result<Date, OutOfRange> {
    months_later(date, months)
        .ok_or(OutOfRange)
        .and_then(in_range)
}

/// `date` plus `months`, clamped to the month's end; none when the calendar cannot hold it.
fn months_later(date: Date, months: i32) -> Option<Date> {
    let total = (date.year() * 12 + (date.month() as i32 - 1)).checked_add(months)?;
    let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
    let month = Month::try_from(u8::try_from(month0 + 1).ok()?).ok()?;
    let last = time::util::days_in_month(month, year);
    Date::from_calendar_date(year, month, date.day().min(last)).ok()
}

/// The day before `date` plus `months`: the last day of a cycle of `months` from `date`.
fn cycle_end(date: Date, months: i32) -> Result<Date, OutOfRange> {
    months_later(date, months)
        .and_then(Date::previous_day)
        .ok_or(OutOfRange)
        .and_then(in_range)
}

/// The expiry of a cycle issued on `issued_on` (none for certifications that do not expire);
/// an error when it would fall outside the range.
pub fn expiry(issued_on: Date, validity_months: Option<i32>) -> Result<Option<Date>, OutOfRange> {
    validity_months.map(|m| cycle_end(issued_on, m)).transpose()
}

/// The reminder offsets, sorted from the earliest (largest) down, without duplicates.
pub fn normalise_offsets(mut offsets: Vec<i32>) -> Vec<i32> {
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    offsets.dedup();
    offsets
}

/// One future cycle of a certification type.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize)]
#[oai(skip_serializing_if_is_none)]
pub struct Cycle {
    pub number: u32,
    pub issued_on: Date,
    /// When a renewal may be requested (the renewal window opens).
    pub window_opens_on: Date,
    /// The reminder dates, earliest first.
    pub reminders: Vec<Date>,
    pub expires_on: Date,
}

/// The next `count` cycles from `start`, each renewed on its expiry day's morrow; an error when
/// a cycle would end outside the range.
pub fn timeline(
    start: Date,
    validity_months: i32,
    window_days: i32,
    offsets: &[i32],
    count: u32,
) -> Result<Vec<Cycle>, OutOfRange> {
    let mut issued = in_range(start)?;
    let mut out = Vec::new();
    // A date `days` before a cycle's expiry, when it is not before the cycle's issue (so it
    // cannot leave the range either).
    let before = |issued: Date, expires: Date, days: i32| {
        expires
            .checked_sub(Duration::days(i64::from(days)))
            .filter(|d| *d >= issued)
    };
    for number in 1..=count {
        let expires = cycle_end(issued, validity_months)?;
        let reminders = normalise_offsets(offsets.to_vec())
            .into_iter()
            .filter_map(|o| before(issued, expires, o))
            .collect();
        out.push(Cycle {
            number,
            issued_on: issued,
            window_opens_on: before(issued, expires, window_days).unwrap_or(issued),
            reminders,
            expires_on: expires,
        });
        if number < count {
            issued = add_days(expires, 1)?;
        }
    }
    Ok(out)
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
        assert_eq!(
            add_months(date!(2026 - 01 - 31), 1),
            Ok(date!(2026 - 02 - 28))
        );
        assert_eq!(
            add_months(date!(2027 - 12 - 15), 26),
            Ok(date!(2030 - 02 - 15))
        );
        assert_eq!(
            expiry(date!(2026 - 03 - 01), Some(12)),
            Ok(Some(date!(2027 - 02 - 28)))
        );
    }

    #[test]
    fn arithmetic_leaving_the_range_is_an_error_not_a_panic() {
        assert_eq!(add_months(date!(9999 - 01 - 01), 12), Err(OutOfRange));
        assert_eq!(add_months(date!(2999 - 06 - 30), 7), Err(OutOfRange));
        assert_eq!(add_months(date!(2026 - 01 - 01), i32::MAX), Err(OutOfRange));
        assert_eq!(add_months(date!(2026 - 01 - 01), i32::MIN), Err(OutOfRange));
        assert_eq!(expiry(date!(2999 - 06 - 01), Some(12)), Err(OutOfRange));
        assert_eq!(
            expiry(date!(2999 - 01 - 01), Some(12)),
            Ok(Some(date!(2999 - 12 - 31)))
        );
        assert_eq!(add_days(date!(2999 - 12 - 31), 1), Err(OutOfRange));
        assert_eq!(add_days(date!(2026 - 01 - 01), i64::MAX), Err(OutOfRange));
        assert_eq!(add_days(date!(1900 - 01 - 01), -1), Err(OutOfRange));
        assert_eq!(
            timeline(date!(9999 - 01 - 01), 12, 90, &[30], 3),
            Err(OutOfRange)
        );
        assert_eq!(
            timeline(date!(2998 - 01 - 01), 12, 90, &[30], 3),
            Err(OutOfRange),
            "the third cycle would end in 3000"
        );
        assert_eq!(
            timeline(date!(2998 - 01 - 01), 12, 90, &[30], 2).map(|t| t.len()),
            Ok(2)
        );
        // A window wider than the dates before it is simply open.
        assert_eq!(
            status(
                date!(1900 - 01 - 01),
                Some(date!(1900 - 01 - 02)),
                3650,
                false
            ),
            Status::Expiring
        );
        assert_eq!(
            status(date!(2026 - 01 - 01), Some(Date::MIN), 3650, false),
            Status::Expired
        );
    }

    #[test]
    fn a_timeline_chains_cycles_with_their_window_and_reminders() {
        let t = timeline(date!(2026 - 01 - 01), 12, 60, &[7, 30, 90, 30], 2).unwrap();
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
