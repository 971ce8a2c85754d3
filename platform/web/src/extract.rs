//! Extractors that put the portal's checks into a handler's signature.
//!
//! * [`SignedIn`]: a live session (else a redirect to the sign-in page).
//! * [`Submitted<F>`]: a live session, a form whose CSRF token matches it, then the form `F`.
//! * [`SubmittedMultipart`]: a live session and a multipart body whose first field is a
//!   matching CSRF token; the rest of the body is left unread for the handler to stream.

use std::sync::Arc;

use poem::{
    web::{Multipart, Redirect},
    FromRequest, IntoResponse, Request, RequestBody,
};
use serde::{de::DeserializeOwned, Deserialize};
use tokio::io::AsyncReadExt;
use trainflow_kernel::{
    auth::{client_ip, TenantCtx},
    secret::constant_time_eq,
    ApiError,
};

use crate::{Nav, Session, Shell, CSRF_FIELD};

/// A signed-in person.
pub struct SignedIn {
    pub session: Session,
    shell: Arc<Shell>,
}

impl SignedIn {
    /// The caller, for use cases.
    pub fn ctx(&self) -> &TenantCtx {
        &self.session.ctx
    }

    /// The navigation bar of a page, with `current` marked.
    pub fn nav(&self, current: &'static str) -> Option<Nav> {
        Some(Nav::new(&self.shell.nav, &self.session, current))
    }

    /// The portal's shared state.
    pub fn shell(&self) -> &Shell {
        &self.shell
    }

    /// The parts other contexts contribute to this person's profile page: (cards, wide cards).
    pub async fn profile_parts(
        &self,
    ) -> trainflow_kernel::ApiResult<(Vec<crate::Card>, Vec<crate::Card>)> {
        crate::dashboard::gather(&self.shell.profile_parts, &self.session).await
    }

    /// The CSRF token forms on the page carry.
    pub fn csrf(&self) -> &str {
        &self.session.csrf_token
    }

    fn check_csrf(&self, submitted: &str) -> Result<(), ApiError> {
        if !submitted.is_empty()
            && constant_time_eq(self.session.csrf_token.as_bytes(), submitted.as_bytes())
        {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// The shell the server attached to the portal's routes.
pub(crate) fn shell_of(req: &Request) -> poem::Result<Arc<Shell>> {
    req.data::<Arc<Shell>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("portal shell not attached")).into())
}

fn to_login() -> poem::Error {
    poem::Error::from_response(Redirect::see_other("/portal/login").into_response())
}

impl<'a> FromRequest<'a> for SignedIn {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let shell = shell_of(req)?;
        let cookie = req
            .cookie()
            .get(shell.session_cookie())
            .map(|c| c.value_str().to_string());
        let Some(cookie) = cookie else {
            return Err(to_login());
        };
        match shell.sessions.resolve(&cookie, client_ip(req)).await? {
            Some(session) => Ok(SignedIn { session, shell }),
            None => Err(to_login()),
        }
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// A CSRF-checked form of a signed-in person: `Submitted(signed_in, form)`.
pub struct Submitted<F>(pub SignedIn, pub F);

impl<'a, F: DeserializeOwned> FromRequest<'a> for Submitted<F> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let signed = SignedIn::from_request(req, body).await?;
        let bytes = body.take()?.into_bytes().await?;
        let token: CsrfOnly = serde_urlencoded::from_bytes(&bytes).map_err(|_| bad_form())?;
        signed.check_csrf(&token.csrf)?;
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|e| ApiError::BadRequest {
            message: format!("the form could not be read: {e}"),
            field: None,
        })?;
        Ok(Submitted(signed, form))
    }
}

fn bad_form() -> ApiError {
    ApiError::BadRequest {
        message: "the form could not be read".into(),
        field: None,
    }
}

/// A CSRF-checked multipart upload of a signed-in person. The form's first field must be the
/// token; nothing after it is read until the check has passed.
pub struct SubmittedMultipart(pub SignedIn, pub Multipart);

impl<'a> FromRequest<'a> for SubmittedMultipart {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let signed = SignedIn::from_request(req, body).await?;
        let mut multipart = Multipart::from_request(req, body).await?;
        let first = multipart
            .next_field()
            .await
            .map_err(|_| bad_form())?
            .ok_or(ApiError::Forbidden)?;
        if first.name() != Some(CSRF_FIELD) {
            return Err(ApiError::Forbidden.into());
        }
        let mut token = String::new();
        first
            .into_async_read()
            .take(256)
            .read_to_string(&mut token)
            .await
            .map_err(|_| bad_form())?;
        signed.check_csrf(&token)?;
        Ok(SubmittedMultipart(signed, multipart))
    }
}

impl SubmittedMultipart {
    /// The form's file field `name`, read only as the use case reads it (so reading stops at the
    /// use case's own limit); an empty file when the form has none, which the use case refuses.
    pub async fn file(&mut self, name: &str) -> poem::Result<trainflow_kernel::body::File> {
        while let Some(field) = self.1.next_field().await? {
            if field.name() == Some(name) {
                return Ok(trainflow_kernel::body::File::from_reader(
                    field.into_async_read(),
                ));
            }
        }
        Ok(trainflow_kernel::body::File::from_bytes(Vec::new()))
    }
}

/// The form of a button that only acts (its CSRF token aside, it carries nothing).
#[derive(Debug, Default, Deserialize)]
pub struct NoFields {}
