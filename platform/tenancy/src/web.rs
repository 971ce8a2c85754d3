//! The organisation's settings page (administrators): name, time zone, locale, brand colour
//! and logo, the notification channels, the reminder offsets and the inactivity clean-up. It
//! calls the same use case as `PUT /api/v1/tenant`.

use askama::Template;
use poem::{
    get, handler,
    http::StatusCode,
    post,
    web::{Data, Query, Redirect},
    EndpointExt, IntoResponse, Route,
};
use serde::Deserialize;
use trainflow_kernel::{auth::Permission, db::Db, now, ApiError};
use trainflow_web::{
    blank, field_errors, notice, render, Errors, Nav, NavEntry, NoFields, PageResult, SignedIn,
    Submitted, SubmittedMultipart,
};

use crate::{api::UpdateTenant, service, tenants::TenantSettings};

/// The settings entry of the navigation bar (administrators).
pub fn nav() -> Vec<NavEntry> {
    vec![NavEntry {
        key: "settings",
        label: "Settings",
        href: "/portal/settings",
        order: 88,
        permission: Some(Permission::TenantSettings),
    }]
}

/// Mounts the settings page on `route` (the portal's, nested under `/portal`).
pub fn mount(route: Route, db: Db) -> Route {
    route
        .at(
            "/settings",
            get(settings_page).post(save_settings).data(db.clone()),
        )
        .at("/settings/logo", post(upload_logo).data(db.clone()))
        .at("/settings/logo/delete", post(remove_logo).data(db))
}

/// The form, as sent and as shown.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    primary_colour: String,
    #[serde(default)]
    logo_url: String,
    /// Checkboxes: present when ticked.
    email: Option<String>,
    sms: Option<String>,
    push: Option<String>,
    /// Days before expiry, separated by commas.
    #[serde(default)]
    reminder_offsets_days: String,
    #[serde(default)]
    inactive_after_days: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Option<Nav>,
    csrf: String,
    form: SettingsForm,
    /// The uploaded logo's address, when the logo is one.
    uploaded_logo: Option<String>,
    notice: Option<&'static str>,
    errors: Errors,
}

fn may_change(me: &SignedIn) -> Result<(), ApiError> {
    if me.session.role.grants(Permission::TenantSettings) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

#[derive(Deserialize)]
pub(crate) struct NoticeQuery {
    notice: Option<String>,
}

/// The form as the settings are.
fn form_of(t: crate::tenants::Tenant) -> SettingsForm {
    let channel = |c: &str| {
        t.settings
            .notification_channels
            .iter()
            .any(|x| x == c)
            .then(|| "on".to_string())
    };
    SettingsForm {
        email: channel("email"),
        sms: channel("sms"),
        push: channel("push"),
        reminder_offsets_days: t
            .settings
            .reminder_offsets_days
            .as_ref()
            .map(|o| o.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))
            .unwrap_or_default(),
        inactive_after_days: t
            .settings
            .inactive_after_days
            .map(|d| d.to_string())
            .unwrap_or_default(),
        logo_url: t.settings.logo_url.clone().unwrap_or_default(),
        primary_colour: t.settings.primary_colour,
        name: t.name,
        time_zone: t.time_zone,
        locale: t.locale,
    }
}

/// The page for `t`, with `errors` at their fields.
fn page_of(
    me: &SignedIn,
    t: crate::tenants::Tenant,
    form: Option<SettingsForm>,
    notice: Option<&'static str>,
    errors: Errors,
) -> SettingsPage {
    let uploaded_logo = t
        .settings
        .logo_url
        .clone()
        .filter(|u| crate::logos::is_uploaded(t.id, u));
    SettingsPage {
        nav: me.nav("settings"),
        csrf: me.csrf().to_string(),
        form: form.unwrap_or_else(|| form_of(t)),
        uploaded_logo,
        notice,
        errors,
    }
}

/// The settings as they are.
#[handler]
async fn settings_page(me: SignedIn, db: Data<&Db>, q: Query<NoticeQuery>) -> PageResult {
    may_change(&me)?;
    let t = service::my_tenant(&db, me.ctx()).await?;
    let notice = notice(
        q.0.notice.as_deref(),
        &[
            ("saved", "Settings saved."),
            ("logo", "The logo was saved."),
            ("logo_removed", "The logo was removed."),
        ],
    );
    render(
        &page_of(&me, t, None, notice, Errors::default()),
        StatusCode::OK,
    )
}

/// Sets the logo from the upload form (field `file`); a refusal shows the page again with the
/// error at the field.
#[handler]
async fn upload_logo(db: Data<&Db>, mut upload: SubmittedMultipart) -> PageResult {
    may_change(&upload.0)?;
    // The picture is read as the use case checks it: reading stops past its size limit.
    let mut file = upload.file("file").await?;
    let me = upload.0;
    match service::set_logo(&db, me.ctx(), &mut file, now()).await {
        Ok(_) => Ok(Redirect::see_other("/portal/settings?notice=logo").into_response()),
        Err(e) => {
            let mut errors = Errors::default();
            for (field, message) in field_errors(e)?.all() {
                // An empty upload is refused at `body`: the form's field is `file`.
                let field = if field == "body" {
                    "file".to_string()
                } else {
                    field
                };
                errors.add(&field, message);
            }
            let t = service::my_tenant(&db, me.ctx()).await?;
            render(
                &page_of(&me, t, None, None, errors),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}

/// Removes the uploaded logo.
#[handler]
async fn remove_logo(db: Data<&Db>, Submitted(me, NoFields {}): Submitted<NoFields>) -> PageResult {
    may_change(&me)?;
    service::remove_logo(&db, me.ctx(), now()).await?;
    Ok(Redirect::see_other("/portal/settings?notice=logo_removed").into_response())
}

/// Saves the settings; a refusal shows the form again with each error at its field.
#[handler]
async fn save_settings(db: Data<&Db>, Submitted(me, form): Submitted<SettingsForm>) -> PageResult {
    may_change(&me)?;
    let mut errors = Errors::default();
    let whole = |raw: &str, field: &str, errors: &mut Errors| -> Option<u32> {
        raw.trim()
            .parse::<u32>()
            .map_err(|_| {
                errors.add(field, "must be a whole number of days");
            })
            .ok()
    };
    let offsets: Option<Vec<u32>> = blank(&form.reminder_offsets_days).map(|raw| {
        raw.split(',')
            .filter_map(|d| whole(d, "settings.reminder_offsets_days", &mut errors))
            .collect()
    });
    let inactive = blank(&form.inactive_after_days)
        .and_then(|d| whole(&d, "settings.inactive_after_days", &mut errors));
    let mut channels = vec!["in_app".to_string()];
    for (ticked, channel) in [
        (&form.email, "email"),
        (&form.sms, "sms"),
        (&form.push, "push"),
    ] {
        if ticked.is_some() {
            channels.push(channel.to_string());
        }
    }
    let body = UpdateTenant {
        name: form.name.clone(),
        time_zone: form.time_zone.trim().to_string(),
        locale: form.locale.trim().to_string(),
        settings: TenantSettings {
            primary_colour: form.primary_colour.trim().to_string(),
            logo_url: blank(&form.logo_url),
            inactive_after_days: inactive,
            notification_channels: channels,
            reminder_offsets_days: offsets,
        },
    };
    let saved = if errors.is_empty() {
        service::update_tenant(&db, me.ctx(), body, now()).await
    } else {
        Err(ApiError::Validation(Default::default()))
    };
    match saved {
        Ok(_) => Ok(Redirect::see_other("/portal/settings?notice=saved").into_response()),
        Err(e) => {
            for (field, message) in field_errors(e)?.all() {
                errors.add(&field, message);
            }
            let t = service::my_tenant(&db, me.ctx()).await?;
            render(
                &page_of(&me, t, Some(form), None, errors),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}
