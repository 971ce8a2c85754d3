//! Email and SMS texts. Each template has a subject, a plain-text body and an HTML body with
//! `{{name}}` placeholders; a tenant may replace any of them (`email_templates`). Values are
//! HTML-escaped in the HTML body, and a placeholder without a value renders empty. Values whose
//! name ends in `_html` are markup the server made (the organisation's logo, `{{logo_html}}`),
//! put in the HTML body as they are and left out of the subject and text.

use time::OffsetDateTime;
use trainflow_kernel::{db::TenantTx, sql, ApiResult};

/// A template's three parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

const LAYOUT_START: &str = "<!doctype html><html><body style=\"font-family:system-ui,sans-serif;\
    max-width:560px;margin:auto;padding:16px;color:#1b1f24\"><div style=\"border-top:4px solid \
    {{brand_colour}};padding-top:8px;margin-bottom:16px;font-weight:600;color:{{brand_colour}}\">\
    {{logo_html}}{{organisation}}</div>";
const LAYOUT_END: &str = "<p style=\"color:#57606a;font-size:13px\">{{organisation}} · TrainFlow\
    </p></body></html>";

/// The built-in templates, by name.
pub const BUILT_IN: &[(&str, &str, &str, &str)] = &[
    (
        "notification",
        "{{title}}",
        "{{body}}\n\n{{link}}\n",
        "<h1 style=\"font-size:20px\">{{title}}</h1><p>{{body}}</p>\
         <p><a href=\"{{link}}\">Open in TrainFlow</a></p>",
    ),
    (
        "welcome",
        "Welcome to {{organisation}} on TrainFlow",
        "{{organisation}} has given you a TrainFlow account: your training, certifications \
         and renewals in one place.\n\n\
         Choose your password (the link works once, for a week): {{set_password_link}}\n\n\
         Then sign in at {{sign_in_link}} as {{sign_in_as}}.\n",
        "<h1 style=\"font-size:20px\">Welcome to TrainFlow</h1>\
         <p>{{organisation}} has given you a TrainFlow account: your training, certifications \
         and renewals in one place.</p>\
         <p><a href=\"{{set_password_link}}\" style=\"display:inline-block;padding:12px 20px;\
         background:#0b5cad;color:#fff;border-radius:6px;text-decoration:none\">Choose your \
         password</a></p><p>The link works once, for a week. Then sign in at \
         <a href=\"{{sign_in_link}}\">{{sign_in_link}}</a> as <strong>{{sign_in_as}}</strong>.</p>",
    ),
    (
        "bulk",
        "{{title}}",
        "A message to {{audience}} of {{organisation}}:\n\n{{body}}\n\n{{link}}\n",
        "<p style=\"color:#57606a;font-size:13px\">A message to {{audience}} of \
         {{organisation}}</p><h1 style=\"font-size:20px\">{{title}}</h1><p>{{body}}</p>\
         <p><a href=\"{{link}}\">Open in TrainFlow</a></p>",
    ),
    (
        "approval_request",
        "Renewal to approve: {{certification}} for {{employee}}",
        "{{employee}} asks to renew {{certification}} (expires {{expires_on}}).\n\
         You are step {{step}} of the approval.\n\n\
         Review and approve or reject: {{approve_link}}\n\n\
         The link works once and expires {{link_expires}}. You can also answer from your \
         approvals queue in TrainFlow.\n",
        "<h1 style=\"font-size:20px\">Renewal to approve</h1>\
         <p><strong>{{employee}}</strong> asks to renew <strong>{{certification}}</strong> \
         (expires {{expires_on}}). You are step {{step}} of the approval.</p>\
         <p><a href=\"{{approve_link}}\" style=\"display:inline-block;padding:12px 20px;\
         background:#0b5cad;color:#fff;border-radius:6px;text-decoration:none\">Review the \
         request</a></p><p>The link works once and expires {{link_expires}}.</p>",
    ),
    (
        "password_reset",
        "Choose a new password",
        "Someone asked to reset the password of your TrainFlow account.\n\n\
         Choose a new password (the link works once, for one hour): {{reset_link}}\n\n\
         If it was not you, ignore this message: your password stays as it is.\n",
        "<h1 style=\"font-size:20px\">Choose a new password</h1>\
         <p>Someone asked to reset the password of your TrainFlow account.</p>\
         <p><a href=\"{{reset_link}}\">Choose a new password</a> (the link works once, for one \
         hour).</p><p>If it was not you, ignore this message: your password stays as it is.</p>",
    ),
    (
        "email_verification",
        "Verify your email address",
        "Confirm that this address is yours (the link works once, for a week): {{verify_link}}\n",
        "<h1 style=\"font-size:20px\">Verify your email address</h1>\
         <p><a href=\"{{verify_link}}\">Confirm that this address is yours</a> (the link works \
         once, for a week).</p>",
    ),
    (
        "certification_expiring",
        "{{certification}} expires in {{days}} days",
        "Your {{certification}} expires on {{expires_on}} ({{days}} days).\n\
         Request a renewal: {{link}}\n",
        "<h1 style=\"font-size:20px\">{{certification}} expires in {{days}} days</h1>\
         <p>It expires on {{expires_on}}.</p><p><a href=\"{{link}}\">Request a renewal</a></p>",
    ),
];

/// The built-in template `name`.
pub fn built_in(name: &str) -> Option<Template> {
    BUILT_IN
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, subject, text, html)| Template {
            subject: subject.to_string(),
            text: text.to_string(),
            html: format!("{LAYOUT_START}{html}{LAYOUT_END}"),
        })
}

/// The tenant's version of `name`, else the built-in one.
pub async fn load(tx: &mut TenantTx, name: &str) -> ApiResult<Option<Template>> {
    let tenant = tx.tenant();
    let row: Option<(String, String, String)> = sql!(tx.conn() => |c| sqlx::query_as(
        "select subject, text_body, html_body from email_templates where tenant_id = $1 and name = $2")
        .bind(tenant).bind(name).fetch_optional(&mut *c).await)?;
    Ok(match row {
        Some((subject, text, html)) => Some(Template {
            subject,
            text,
            html,
        }),
        None => built_in(name),
    })
}

/// Stores the tenant's own version of `name`.
pub async fn save(
    tx: &mut TenantTx,
    name: &str,
    template: &Template,
    now: OffsetDateTime,
) -> ApiResult<()> {
    let tenant = tx.tenant();
    sql!(tx.conn() => |c| sqlx::query(
        "insert into email_templates (tenant_id, name, subject, text_body, html_body, updated_at)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (tenant_id, name) do update set subject = excluded.subject,
             text_body = excluded.text_body, html_body = excluded.html_body, updated_at = excluded.updated_at")
        .bind(tenant).bind(name).bind(&template.subject).bind(&template.text).bind(&template.html).bind(now)
        .execute(&mut *c).await.map(drop))?;
    Ok(())
}

/// Goes back to the built-in version of `name` (nothing to do when the tenant has none of its
/// own).
pub async fn reset(tx: &mut TenantTx, name: &str) -> ApiResult<bool> {
    let tenant = tx.tenant();
    let n = sql!(tx.conn() => |c| sqlx::query(
        "delete from email_templates where tenant_id = $1 and name = $2")
        .bind(tenant).bind(name).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// The templates the tenant has its own version of: (name, subject), in one statement.
pub async fn customised(tx: &mut TenantTx) -> ApiResult<Vec<(String, String)>> {
    let tenant = tx.tenant();
    Ok(sql!(tx.conn() => |c| sqlx::query_as(
        "select name, subject from email_templates where tenant_id = $1 order by name")
        .bind(tenant).fetch_all(&mut *c).await)?)
}

/// The tenant's colour in emails: `settings.primary_colour` when it is `#rrggbb` (the settings
/// check it), else TrainFlow's.
pub fn brand_colour(settings: &serde_json::Value) -> String {
    match settings.get("primary_colour").and_then(|c| c.as_str()) {
        Some(c)
            if c.len() == 7
                && c.starts_with('#')
                && c[1..].chars().all(|h| h.is_ascii_hexdigit()) =>
        {
            c.to_string()
        }
        _ => "#1f4e79".into(),
    }
}

/// The organisation's logo in an email (`settings.logo_url`, made absolute with the portal's
/// URL), above its name; empty without one.
pub fn logo_html(settings: &serde_json::Value, public_url: &str, organisation: &str) -> String {
    let Some(url) = settings
        .get("logo_url")
        .and_then(|u| u.as_str())
        .filter(|u| u.starts_with("https://") || u.starts_with('/'))
    else {
        return String::new();
    };
    let url = if url.starts_with('/') {
        format!("{}{url}", public_url.trim_end_matches('/'))
    } else {
        url.to_string()
    };
    format!(
        "<img src=\"{}\" alt=\"{}\" style=\"display:block;max-height:48px;max-width:240px;margin-bottom:6px\">",
        escape(&url),
        escape(organisation)
    )
}

/// The values every email of the tenant has: its name, colour and logo.
pub fn tenant_values(
    organisation: &str,
    settings: &serde_json::Value,
    public_url: &str,
) -> [(&'static str, String); 3] {
    [
        ("organisation", organisation.to_string()),
        ("brand_colour", brand_colour(settings)),
        ("logo_html", logo_html(settings, public_url, organisation)),
    ]
}

/// Example values of every placeholder the built-in templates use, for previews (with the
/// tenant's name, colour and logo from `settings`).
pub fn sample_values(
    organisation: &str,
    settings: &serde_json::Value,
    public_url: &str,
) -> Vec<(&'static str, String)> {
    let url = public_url.trim_end_matches('/');
    let mut values = tenant_values(organisation, settings, public_url).to_vec();
    values.extend([
        ("title", "Personal Track Safety expires in 30 days".into()),
        (
            "body",
            "Your Personal Track Safety certificate expires on 1 January 2027. Request a renewal \
             from your certifications page."
                .into(),
        ),
        ("link", format!("{url}/portal/certifications")),
        ("certification", "Personal Track Safety".into()),
        ("employee", "Alice Brown".into()),
        ("expires_on", "2027-01-01".into()),
        ("days", "30".into()),
        (
            "set_password_link",
            format!("{url}/portal/reset-password?token=example"),
        ),
        ("sign_in_link", format!("{url}/portal/login")),
        ("sign_in_as", "alice.brown@example.com".into()),
        ("audience", "everyone in Track Maintenance".into()),
        ("step", "1".into()),
        ("approve_link", format!("{url}/a/example-approval-link")),
        ("link_expires", "5 Dec 2026, 09:00".into()),
        (
            "reset_link",
            format!("{url}/portal/reset-password?token=example"),
        ),
        (
            "verify_link",
            format!("{url}/portal/verify-email?token=example"),
        ),
    ]);
    values
}

/// Fills `template` with `vars`.
pub fn render(template: &Template, vars: &[(&str, String)]) -> Rendered {
    Rendered {
        subject: fill(&template.subject, vars, false)
            .replace(['\r', '\n'], " ")
            .chars()
            .take(200)
            .collect(),
        text: fill(&template.text, vars, false),
        html: fill(&template.html, vars, true),
    }
}

fn fill(source: &str, vars: &[(&str, String)], html: bool) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let name = after[..end].trim();
                if let Some((_, value)) = vars.iter().find(|(n, _)| *n == name) {
                    match (html, name.ends_with("_html")) {
                        (true, true) => out.push_str(value),
                        (true, false) => out.push_str(&escape(value)),
                        (false, true) => {}
                        (false, false) => out.push_str(value),
                    }
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The one HTML escaper, from the web layer.
pub use trainflow_web::escape;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_escaped_in_html_only() {
        let t = Template {
            subject: "Hi {{name}}\nthere".into(),
            text: "{{name}} <{{missing}}>".into(),
            html: "<b>{{ name }}</b>{{unclosed".into(),
        };
        let r = render(&t, &[("name", "A&B <x>".into())]);
        assert_eq!(r.subject, "Hi A&B <x> there");
        assert_eq!(r.text, "A&B <x> <>");
        assert_eq!(r.html, "<b>A&amp;B &lt;x&gt;</b>{{unclosed");
    }

    #[test]
    fn the_sample_values_fill_every_placeholder_of_the_built_in_templates() {
        let vars = sample_values(
            "Northwind Rail",
            &serde_json::json!({"primary_colour": "#aa3300", "logo_url": "/api/v1/branding/x/logo?v=1"}),
            "https://trainflow.example.com/",
        );
        for (name, ..) in BUILT_IN {
            let r = render(&built_in(name).unwrap(), &vars);
            for part in [&r.subject, &r.text, &r.html] {
                assert!(!part.contains("{{"), "{name}: {part}");
            }
            assert!(r.html.contains("Northwind Rail"), "{name}");
            assert!(r.html.contains("border-top:4px solid #aa3300"), "{name}");
            assert!(
                r.html.contains(
                    "<img src=\"https://trainflow.example.com/api/v1/branding/x/logo?v=1\" alt=\"Northwind Rail\""
                ),
                "{name}: {}",
                r.html
            );
        }
        // Markup values go into the HTML only, as they are; a tenant's text cannot make them.
        let t = Template {
            subject: "{{logo_html}}x".into(),
            text: "{{logo_html}}y".into(),
            html: "{{logo_html}}{{organisation}}".into(),
        };
        let r = render(
            &t,
            &[
                ("logo_html", "<img>".into()),
                ("organisation", "<b>".into()),
            ],
        );
        assert_eq!((r.subject.as_str(), r.text.as_str()), ("x", "y"));
        assert_eq!(r.html, "<img>&lt;b&gt;");
        assert_eq!(
            logo_html(&serde_json::json!({"logo_url": "javascript:x"}), "", "o"),
            ""
        );
        let colour = |v: serde_json::Value| brand_colour(&v);
        assert_eq!(
            colour(serde_json::json!({"primary_colour": "#AA3300"})),
            "#AA3300"
        );
        assert_eq!(
            colour(serde_json::json!({"primary_colour": "red;x"})),
            "#1f4e79"
        );
        assert_eq!(colour(serde_json::json!({})), "#1f4e79");
    }

    #[test]
    fn every_built_in_template_exists_with_its_layout() {
        for (name, ..) in BUILT_IN {
            let t = built_in(name).unwrap();
            assert!(t.html.starts_with("<!doctype html>"), "{name}");
        }
        assert!(built_in("nope").is_none());
    }
}
