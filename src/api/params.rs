//! Query parameters of the read routes (`/self/calls`, `/self/events`): comma-separated enum
//! lists, epoch-millisecond dates, paging and sorting, each validated with a named error.

use super::error::ApiError;
use crate::domain::{CallState, Direction, FieldError, Timestamp};
use crate::store::{CallFilter, CallPage, SortKey};

/// Default and largest page size.
pub const DEFAULT_SIZE: u64 = 20;
pub const MAX_SIZE: u64 = 1000;

/// The raw query string, split into (name, value) pairs, with errors collected as they are read.
pub struct Params {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

impl Params {
    pub fn parse(query: Option<&str>) -> Params {
        let pairs = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Params {
            pairs,
            errors: Vec::new(),
        }
    }

    /// Every value given for `name`, comma-separated values split, blanks dropped.
    fn values(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The last value given for `name`.
    fn single(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
    }

    fn enums<T>(&mut self, name: &str, allowed: &str, parse: impl Fn(&str) -> Option<T>) -> Vec<T> {
        let mut out = Vec::new();
        for value in self.values(name) {
            match parse(&value) {
                Some(v) => out.push(v),
                None => self.errors.push(FieldError::new(
                    name,
                    format!("unknown value {value:?}; use {allowed}"),
                )),
            }
        }
        out
    }

    fn integer(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        let raw = self.single(name)?;
        match raw.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.errors.push(FieldError::new(
                    name,
                    format!("must be an integer from {min} to {max}"),
                ));
                None
            }
        }
    }

    fn date(&mut self, name: &str) -> Option<Timestamp> {
        let ms = self.integer(name, 0, i64::MAX)?;
        let t = Timestamp::from_millis(ms);
        if t.is_none() {
            self.errors.push(FieldError::new(
                name,
                "must be epoch milliseconds before the year 10000",
            ));
        }
        t
    }

    /// `direction`, `states` (with a default when absent), `fromDate`, `toDate`, and `types`.
    pub fn filter(&mut self, default_states: &[CallState]) -> CallFilter {
        self.enums("types", "CALL", |t| (t == "CALL").then_some(()));
        let directions = self.enums("direction", Direction::NAMES, Direction::parse);
        let mut states = self.enums("states", CallState::NAMES, CallState::parse);
        if states.is_empty() && self.values("states").is_empty() {
            states = default_states.to_vec();
        }
        CallFilter {
            active_only: false,
            directions,
            states,
            from: self.date("fromDate"),
            to: self.date("toDate"),
        }
    }

    /// `offset` (page number), `size`, `order` (with its default) and `sort`.
    pub fn page(&mut self, filter: CallFilter, descending_by_default: bool) -> CallPage {
        let page = self.integer("offset", 0, i64::MAX).unwrap_or(0) as u64;
        let size = self
            .integer("size", 1, MAX_SIZE as i64)
            .map_or(DEFAULT_SIZE, |n| n as u64);
        let descending = match self.single("order").map(|o| o.to_ascii_uppercase()) {
            None => descending_by_default,
            Some(o) if o == "ASC" => false,
            Some(o) if o == "DESC" => true,
            Some(_) => {
                self.errors
                    .push(FieldError::new("order", "must be ASC or DESC"));
                descending_by_default
            }
        };
        let sort = match self.single("sort") {
            None => SortKey::StartTime,
            Some(s) => SortKey::parse(&s).unwrap_or_else(|| {
                self.errors.push(FieldError::new(
                    "sort",
                    format!("must be one of {}", SortKey::NAMES),
                ));
                SortKey::StartTime
            }),
        };
        CallPage {
            filter,
            sort,
            descending,
            page,
            size,
        }
    }

    /// The collected errors as a 422, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lists_dates_and_paging() {
        let mut p = Params::parse(Some(
            "direction=INBOUND,OUTBOUND&states=RINGING&states=ACTIVE&fromDate=1000&offset=2&size=5&order=asc&sort=duration",
        ));
        let filter = p.filter(&[]);
        let page = p.page(filter, true);
        p.finish().unwrap();
        assert_eq!(
            page.filter.directions,
            [Direction::Inbound, Direction::Outbound]
        );
        assert_eq!(page.filter.states, [CallState::Ringing, CallState::Active]);
        assert_eq!(page.filter.from, Timestamp::from_millis(1000));
        assert_eq!(
            (page.page, page.size, page.descending, page.sort),
            (2, 5, false, SortKey::Duration)
        );
    }

    #[test]
    fn names_each_bad_parameter() {
        let mut p = Params::parse(Some(
            "direction=UP&states=NAPPING&size=0&offset=-1&order=UP&sort=colour&fromDate=x&types=SMS",
        ));
        let filter = p.filter(&[CallState::Active]);
        p.page(filter, true);
        let Err(ApiError::Validation(errors)) = p.finish() else {
            panic!("expected 422")
        };
        let mut fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "direction",
                "fromDate",
                "offset",
                "order",
                "size",
                "sort",
                "states",
                "types"
            ]
        );
    }

    #[test]
    fn default_states_apply_only_when_none_are_given() {
        let mut p = Params::parse(None);
        assert_eq!(p.filter(&[CallState::Active]).states, [CallState::Active]);
    }
}
