//! One's own profile.

use std::sync::Arc;

use askama::Template;
use poem::{
    handler,
    http::{header, StatusCode},
    web::{Data, Path, Query, Redirect},
    IntoResponse, Request, Response,
};
use serde::Deserialize;
use trainflow_kernel::now;
use trainflow_web::{
    blank, field_errors, render, Card, Errors, Nav, NoFields, PageResult, SignedIn, Submitted,
    SubmittedMultipart,
};
use uuid::Uuid;

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
    #[serde(default)]
    bio: String,
}

impl ProfileForm {
    /// The form showing `user` as stored.
    fn of(user: &User) -> Self {
        ProfileForm {
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            phone: user.phone.clone().unwrap_or_default(),
            address: user.address.clone().unwrap_or_default(),
            gender: user.gender.clone().unwrap_or_default(),
            bio: user.bio.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    nav: Option<Nav>,
    csrf: String,
    user: User,
    form: ProfileForm,
    errors: Errors,
    saved: Option<&'static str>,
    /// The role-specific parts other contexts and this one contribute.
    cards: Vec<Card>,
    wide: Vec<Card>,
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
    let form = ProfileForm::of(&user);
    let (cards, wide) = me.profile_parts().await?;
    render(
        &ProfilePage {
            nav: me.nav("profile"),
            csrf: me.csrf().to_string(),
            user,
            form,
            errors: Errors::default(),
            cards,
            wide,
            saved: match q.0.saved.as_deref() {
                None => None,
                Some("avatar") => Some("Your picture was saved."),
                Some("avatar_removed") => Some("Your picture was removed."),
                Some(_) => Some("Your profile was saved."),
            },
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
        bio: blank(&f.bio),
    };
    match service::update_me(&pages.deps.db, me.ctx(), edit).await {
        Ok(_) => Ok(Redirect::see_other("/portal/profile?saved=1").into_response()),
        Err(e) => refused(&pages, &me, Some(f), e).await,
    }
}

/// The profile page again with a refusal's errors at their fields, showing `form` as sent
/// (or, for the picture's form, the profile as stored).
async fn refused(
    pages: &IdentityPages,
    me: &SignedIn,
    form: Option<ProfileForm>,
    err: trainflow_kernel::ApiError,
) -> PageResult {
    let errors = field_errors(err)?;
    let user = service::me(&pages.deps.db, me.ctx(), now()).await?;
    let form = form.unwrap_or_else(|| ProfileForm::of(&user));
    let (cards, wide) = me.profile_parts().await?;
    render(
        &ProfilePage {
            nav: me.nav("profile"),
            csrf: me.csrf().to_string(),
            user,
            form,
            errors,
            saved: None,
            cards,
            wide,
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

/// Serves a person's picture to anyone signed in to the tenant (`ETag`, `304` when current).
#[handler]
pub(super) async fn avatar(
    me: SignedIn,
    pages: Data<&Arc<IdentityPages>>,
    id: Path<Uuid>,
    req: &Request,
) -> PageResult {
    let a = service::avatar(&pages.deps.db, me.ctx(), id.0).await?;
    let current = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(a.etag.as_str());
    let builder = Response::builder()
        .header(header::ETAG, a.etag.as_str())
        .header(header::CACHE_CONTROL, crate::api::AVATAR_CACHE);
    Ok(if current {
        builder.status(StatusCode::NOT_MODIFIED).finish()
    } else {
        builder
            .header(header::CONTENT_TYPE, a.content_type.as_str())
            .body(a.image)
    })
}

/// Sets one's picture from the profile page's upload form (field `file`).
#[handler]
pub(super) async fn upload_avatar(
    pages: Data<&Arc<IdentityPages>>,
    mut upload: SubmittedMultipart,
) -> PageResult {
    // The picture is read as the use case checks it: reading stops past its size limit.
    let mut file = upload.file("file").await?;
    let me = upload.0;
    match service::set_avatar(&pages.deps.db, me.ctx(), &mut file).await {
        Ok(_) => Ok(Redirect::see_other("/portal/profile?saved=avatar").into_response()),
        Err(e) => refused(&pages, &me, None, e).await,
    }
}

/// Removes one's picture.
#[handler]
pub(super) async fn remove_avatar(
    pages: Data<&Arc<IdentityPages>>,
    Submitted(me, NoFields {}): Submitted<NoFields>,
) -> PageResult {
    service::remove_avatar(&pages.deps.db, me.ctx()).await?;
    Ok(Redirect::see_other("/portal/profile?saved=avatar_removed").into_response())
}
