//! Mapping rows of a table (CSV, spreadsheet, database result) to TrainFlow entities, shared by
//! the table connectors so every one of them accepts the same column mappings.

use std::collections::HashMap;

use serde::Deserialize;

use crate::{
    dates::parse_date, Certification, Completion, ConnectorError, Employee, Entity, EntityKind,
    OrgUnit, StreamInfo,
};

/// What each row of a table is.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A person.
    Employee,
    /// An organisational unit.
    OrgUnit,
    /// A certification a person holds.
    Certification,
    /// A course completion.
    Completion,
}

impl Kind {
    /// The stream name.
    pub fn stream(self) -> &'static str {
        match self {
            Kind::Employee => "employees",
            Kind::OrgUnit => "org_units",
            Kind::Certification => "certifications",
            Kind::Completion => "completions",
        }
    }

    /// The WIT entity kind.
    pub fn entity(self) -> EntityKind {
        match self {
            Kind::Employee => EntityKind::Employee,
            Kind::OrgUnit => EntityKind::OrgUnit,
            Kind::Certification => EntityKind::Certification,
            Kind::Completion => EntityKind::Completion,
        }
    }

    /// Fields every mapping must name.
    pub fn required(self) -> &'static [&'static str] {
        match self {
            Kind::Employee => &["external_id"],
            Kind::OrgUnit => &["external_id", "name"],
            Kind::Certification => &["external_id", "employee", "certification_type", "issued_on"],
            Kind::Completion => &["external_id", "employee", "course", "completed_on"],
        }
    }

    /// Fields a mapping may name.
    pub fn optional(self) -> &'static [&'static str] {
        match self {
            Kind::Employee => &[
                "first_name",
                "last_name",
                "email",
                "phone",
                "employee_number",
                "org_unit",
                "position",
                "active",
            ],
            Kind::OrgUnit => &["code", "parent"],
            Kind::Certification => &["expires_on", "certificate_number"],
            Kind::Completion => &["score"],
        }
    }
}

/// The column mapping every table connector takes: what a row is, and TrainFlow field →
/// the table's heading.
#[derive(Deserialize, Clone, Debug)]
pub struct Mapping {
    /// What each row is.
    pub entity: Kind,
    /// TrainFlow field → heading (matched case-insensitively).
    pub columns: HashMap<String, String>,
}

impl Mapping {
    /// Checks that every required field is mapped and no unknown field is.
    pub fn validate(&self) -> Result<(), ConnectorError> {
        for field in self.entity.required() {
            if !self.columns.contains_key(*field) {
                return Err(ConnectorError::Configuration(format!(
                    "columns.{field} is required"
                )));
            }
        }
        for key in self.columns.keys() {
            if !self.entity.required().contains(&key.as_str())
                && !self.entity.optional().contains(&key.as_str())
            {
                return Err(ConnectorError::Configuration(format!(
                    "columns.{key} is not a field of this entity"
                )));
            }
        }
        Ok(())
    }

    /// The one stream a table offers.
    pub fn streams(&self) -> Vec<StreamInfo> {
        vec![StreamInfo {
            name: self.entity.stream().into(),
            entity: self.entity.entity(),
            supports_incremental: false,
        }]
    }
}

/// Field name → column index, from the header row.
pub struct Layout(HashMap<&'static str, usize>);

impl Layout {
    /// Finds each mapped heading in `header`; a missing one is a configuration error naming it.
    pub fn new(cfg: &Mapping, header: &[String]) -> Result<Self, ConnectorError> {
        let mut map = HashMap::new();
        for field in cfg.entity.required().iter().chain(cfg.entity.optional()) {
            if let Some(column) = cfg.columns.get(*field) {
                let index = header
                    .iter()
                    .position(|h| h.eq_ignore_ascii_case(column.trim()))
                    .ok_or_else(|| {
                        ConnectorError::Configuration(format!(
                            "the file has no column `{column}` (for {field})"
                        ))
                    })?;
                map.insert(*field, index);
            }
        }
        Ok(Self(map))
    }

    /// The non-empty value of `field` in `row`.
    pub fn get<'a>(&self, row: &'a [String], field: &str) -> Option<&'a str> {
        self.0
            .get(field)
            .and_then(|i| row.get(*i))
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Like [`Layout::get`], with an error naming the field when it is empty.
    pub fn required<'a>(&self, row: &'a [String], field: &str) -> Result<&'a str, String> {
        self.get(row, field)
            .ok_or_else(|| format!("{field} is empty"))
    }
}

/// Turns a row into an entity, or says why it cannot.
pub fn parse_row(kind: Kind, l: &Layout, row: &[String]) -> Result<Entity, String> {
    let opt = |f: &str| l.get(row, f).map(str::to_string);
    Ok(match kind {
        Kind::Employee => {
            let active = match l.get(row, "active").map(|s| s.to_ascii_lowercase()) {
                None => true,
                Some(v) if ["yes", "y", "true", "1", "active"].contains(&v.as_str()) => true,
                Some(v) if ["no", "n", "false", "0", "inactive", "left"].contains(&v.as_str()) => {
                    false
                }
                Some(v) => return Err(format!("active `{v}` is not yes or no")),
            };
            Entity::Employee(Employee {
                external_id: l.required(row, "external_id")?.into(),
                email: opt("email"),
                // Frontline exports may carry no names (or no email): the host derives a name
                // from the job role and employee number and flags the profile incomplete.
                first_name: opt("first_name").unwrap_or_default(),
                last_name: opt("last_name").unwrap_or_default(),
                phone: opt("phone"),
                employee_number: opt("employee_number"),
                org_unit_external_id: opt("org_unit"),
                position: opt("position"),
                active,
            })
        }
        Kind::OrgUnit => Entity::OrgUnit(OrgUnit {
            external_id: l.required(row, "external_id")?.into(),
            name: l.required(row, "name")?.into(),
            code: opt("code"),
            parent_external_id: opt("parent"),
        }),
        Kind::Certification => Entity::Certification(Certification {
            external_id: l.required(row, "external_id")?.into(),
            employee_external_id: l.required(row, "employee")?.into(),
            certification_type: l.required(row, "certification_type")?.into(),
            issued_on: parse_date(l.required(row, "issued_on")?)?,
            expires_on: l.get(row, "expires_on").map(parse_date).transpose()?,
            certificate_number: opt("certificate_number"),
        }),
        Kind::Completion => Entity::Completion(Completion {
            external_id: l.required(row, "external_id")?.into(),
            employee_external_id: l.required(row, "employee")?.into(),
            course_external_id: l.required(row, "course")?.into(),
            completed_on: parse_date(l.required(row, "completed_on")?)?,
            score: match l.get(row, "score") {
                None => None,
                Some(s) => Some(
                    s.trim_end_matches('%')
                        .parse::<f32>()
                        .map_err(|_| format!("score `{s}` is not a number"))?,
                ),
            },
        }),
    })
}
