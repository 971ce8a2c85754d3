//! One's own profile.

use std::sync::Arc;

use askama::Template;
use poem::{
    handler,
    http::StatusCode,
    web::{Data, Query, Redirect},
    IntoResponse,
};
use serde::Deserialize;
use trainflow_kernel::now;
use trainflow_web::{blank, field_errors, render, Errors, Nav, PageResult, SignedIn, Submitted};

use super::IdentityPages;
use crate::{
    service::{self, SelfEdit},
    users::User,
};

#[derive(Default, Deserialize)]
pub(super) struct ProfileForm {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    gender: String,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    nav: Option<Nav>,
    csrf: String,
    user: User,
    form: ProfileForm,
    errors: Errors,
    saved: bool,
}

#[derive(Deserialize)]
pub(super) struct SavedQuery {
    saved: Option<String>,
}

#[handler]
pub(super) async fn profile(
    me: SignedIn,
    pages: Data<&Arc<IdentityPages>>,
    q: Query<SavedQuery>,
) -> PageResult {
    let user = service::me(&pages.deps.db, me.ctx(), now()).await?;
    let form = ProfileForm {
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        phone: user.phone.clone().unwrap_or_default(),
        address: user.address.clone().unwrap_or_default(),
        gender: user.gender.clone().unwrap_or_default(),
    };
    render(
        &ProfilePage {
            nav: me.nav("profile"),
            csrf: me.csrf().to_string(),
            user,
            form,
            errors: Errors::default(),
            saved: q.0.saved.is_some(),
        },
        StatusCode::OK,
    )
}

#[handler]
pub(super) async fn save_profile(
    pages: Data<&Arc<IdentityPages>>,
    Submitted(me, f): Submitted<ProfileForm>,
) -> PageResult {
    let edit = SelfEdit {
        first_name: f.first_name.clone(),
        last_name: f.last_name.clone(),
        phone: blank(&f.phone),
        address: blank(&f.address),
        gender: blank(&f.gender),
    };
    match service::update_me(&pages.deps.db, me.ctx(), edit).await {
        Ok(_) => Ok(Redirect::see_other("/portal/profile?saved=1").into_response()),
        Err(e) => {
            let errors = field_errors(e)?;
            let user = service::me(&pages.deps.db, me.ctx(), now()).await?;
            render(
                &ProfilePage {
                    nav: me.nav("profile"),
                    csrf: me.csrf().to_string(),
                    user,
                    form: f,
                    errors,
                    saved: false,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}
