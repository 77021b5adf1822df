//! The dashboard's HTML pages: jobs (with the queue and the running batches), one job
//! (spec, progress, a timeline of its attempts by worker, counters, cancel), workers, and
//! sign-in. Each page embeds its live part rendered once; [`live`](super::live) then
//! pushes that part again as it changes. Askama escapes every value.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use weft_auth::tokens::Caller;
use weft_core::status::JobStatus;

use super::api::{cancel_job, visible_job};
use super::sessions::{self, changer, page_session, who, Refusal};
use super::views::{self, BatchRow, JobRow, SpecLine, Timeline, WorkerRow};
use super::Web;

/// The jobs list's live part: the cluster in numbers, the jobs, the running batches.
#[derive(Template)]
#[template(path = "jobs_live.html")]
pub struct JobsLive {
    pub workers: u64,
    pub busy_slots: u64,
    pub slots: u64,
    pub waiting: u64,
    pub jobs: Vec<JobRow>,
    pub batches: Vec<BatchRow>,
}

impl JobsLive {
    /// What `caller` sees now.
    pub async fn now(web: &Web, caller: &Caller) -> Result<Self, Refusal> {
        let gauges = web.cluster.gauges();
        let batches = web.batches.visible_to(caller);
        Ok(Self {
            workers: gauges.workers,
            busy_slots: gauges.busy_slots,
            slots: gauges.slots,
            waiting: gauges.waiting,
            jobs: views::job_rows(&web.jobs.list(200, caller).await?),
            batches: views::batch_rows(&batches),
        })
    }
}

/// One job's live part.
#[derive(Template)]
#[template(path = "job_live.html")]
pub struct JobLive {
    pub job: JobRow,
    pub output: String,
    pub timeline: Timeline,
    pub counters: Vec<(String, u64)>,
    pub can_cancel: bool,
    pub csrf: String,
}

impl JobLive {
    /// The job as it is now.
    pub fn of(status: &JobStatus, csrf: &str) -> Self {
        let job = views::job_rows(std::slice::from_ref(status)).remove(0);
        Self {
            job,
            output: status.output.to_string(),
            timeline: views::timeline(status),
            counters: status.counters.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            can_cancel: !status.state.is_final(),
            csrf: csrf.to_string(),
        }
    }
}

/// The workers page's live part.
#[derive(Template)]
#[template(path = "workers_live.html")]
pub struct WorkersLive {
    pub workers: Vec<WorkerRow>,
    pub left: Vec<WorkerRow>,
}

impl WorkersLive {
    /// The workers now.
    pub fn now(web: &Web) -> Self {
        Self {
            workers: views::worker_rows(&web.cluster.workers()),
            left: views::worker_rows(&web.cluster.departed()),
        }
    }
}

#[derive(Template)]
#[template(path = "page.html")]
struct Page {
    title: String,
    who: String,
    csrf: String,
    /// Where its live part streams from.
    live_url: String,
    /// The live part, rendered (escaped) by its own template.
    live: String,
    /// The job's spec, on a job's page.
    spec: Vec<SpecLine>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct Login {
    error: String,
}

/// A rendered template, or 500 if it failed (it cannot, for these types).
fn render(template: &impl Template) -> Result<String, Refusal> {
    template
        .render()
        .map_err(|e| Refusal::Internal(format!("page rendering failed: {e}")))
}

/// Who asks for a page, once they may read the dashboard; refusals come as pages (sign-in
/// goes to `/login`).
struct Viewer {
    caller: Caller,
    csrf: String,
    cookie: Option<header::HeaderValue>,
}

/// What a page shows: its title, its live part's URL and HTML, and the job's spec lines.
type PageParts = (String, String, String, Vec<SpecLine>);

impl Viewer {
    fn of(web: &Web, headers: &HeaderMap) -> Result<Self, Refusal> {
        let asker = who(web, headers)?;
        sessions::require(&asker.caller, weft_auth::tokens::Role::Read, "reading the dashboard")?;
        let (csrf, cookie) = page_session(web, &asker);
        Ok(Self {
            caller: asker.caller,
            csrf,
            cookie,
        })
    }

    /// The page of `built` parts, or the refusal as a page.
    fn page(self, built: Result<PageParts, Refusal>) -> Response {
        let who = format!("{} ({})", self.caller.name, self.caller.role);
        let html = built.and_then(|(title, live_url, live, spec)| {
            render(&Page {
                title,
                who,
                csrf: self.csrf,
                live_url,
                live,
                spec,
            })
        });
        match html {
            Ok(html) => {
                let mut response = Html(html).into_response();
                if let Some(cookie) = self.cookie {
                    response.headers_mut().insert(header::SET_COOKIE, cookie);
                }
                response
            }
            Err(refusal) => refusal.for_page(),
        }
    }
}

/// `GET /`: the jobs.
pub async fn jobs(State(web): State<Web>, headers: HeaderMap) -> Response {
    let viewer = match Viewer::of(&web, &headers) {
        Ok(viewer) => viewer,
        Err(refusal) => return refusal.for_page(),
    };
    let built = async {
        let live = render(&JobsLive::now(&web, &viewer.caller).await?)?;
        Ok(("jobs".into(), "/live/jobs".into(), live, Vec::new()))
    };
    let built = built.await;
    viewer.page(built)
}

/// `GET /jobs/{id}`: one job.
pub async fn job(State(web): State<Web>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let viewer = match Viewer::of(&web, &headers) {
        Ok(viewer) => viewer,
        Err(refusal) => return refusal.for_page(),
    };
    let built = async {
        let status = visible_job(&web, &viewer.caller, &id, "see").await?;
        let spec = web
            .jobs
            .record(status.id)
            .await?
            .map_or_else(Vec::new, |record| views::spec_lines(&record.spec));
        let live = render(&JobLive::of(&status, &viewer.csrf))?;
        Ok((
            format!("{} {}", status.id, status.name),
            format!("/live/jobs/{}", status.id),
            live,
            spec,
        ))
    };
    let built = built.await;
    viewer.page(built)
}

/// `GET /workers`: the workers.
pub async fn workers(State(web): State<Web>, headers: HeaderMap) -> Response {
    let viewer = match Viewer::of(&web, &headers) {
        Ok(viewer) => viewer,
        Err(refusal) => return refusal.for_page(),
    };
    let built =
        render(&WorkersLive::now(&web)).map(|live| ("workers".into(), "/live/workers".into(), live, Vec::new()));
    viewer.page(built)
}

#[derive(Template)]
#[template(path = "log.html")]
struct LogPage {
    title: String,
    job: String,
    task: String,
    number: u32,
    worker: String,
    text: String,
    error: String,
}

/// `GET /jobs/{id}/logs/{attempt}`: one attempt's log, read from its worker.
pub async fn log(State(web): State<Web>, headers: HeaderMap, Path((id, attempt)): Path<(String, u64)>) -> Response {
    let caller = match sessions::reader(&web, &headers) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.for_page(),
    };
    let status = match visible_job(&web, &caller, &id, "read the logs of").await {
        Ok(status) => status,
        Err(refusal) => return refusal.for_page(),
    };
    let Some(info) = status.attempts.iter().find(|a| a.id == attempt) else {
        return Refusal::NotFound(format!("{id} has no attempt {attempt}")).for_page();
    };
    let task = crate::logs::task_of(&status, info);
    let read = web.logs.read(info, task).await;
    let page = LogPage {
        title: format!("{task} attempt {}", info.number),
        job: status.id.to_string(),
        task: format!("{}{}", &info.kind.name()[..1], info.task_index),
        number: info.number,
        worker: info.worker.clone(),
        text: read
            .as_ref()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .unwrap_or_default(),
        error: read.err().unwrap_or_default(),
    };
    match render(&page) {
        Ok(html) => Html(html).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// The cancel form.
#[derive(serde::Deserialize)]
pub struct CancelForm {
    /// Missing is refused like a wrong one, by [`changer`].
    #[serde(default)]
    csrf: String,
}

/// `POST /jobs/{id}/cancel`: cancels, then back to the job's page.
pub async fn cancel(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Response {
    let caller = match changer(&web, &headers, Some(&form.csrf)) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.for_page(),
    };
    match cancel_job(&web, &caller, &id).await {
        Ok(status) => Redirect::to(&format!("/jobs/{}", status.id)).into_response(),
        Err(refusal) => refusal.for_page(),
    }
}

/// `GET /login`: the sign-in form.
pub async fn login_form() -> Response {
    match render(&Login { error: String::new() }) {
        Ok(html) => Html(html).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// The sign-in form.
#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /login`: a session for the token's identity, then the jobs.
pub async fn login(State(web): State<Web>, Form(form): Form<LoginForm>) -> Response {
    match sessions::sign_in(&web, form.token.trim()) {
        Ok(cookie) => {
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Err(_) => {
            let page = Login {
                error: "That token is not admitted (unknown, expired or revoked).".into(),
            };
            match render(&page) {
                Ok(html) => (StatusCode::UNAUTHORIZED, Html(html)).into_response(),
                Err(refusal) => refusal.into_response(),
            }
        }
    }
}

/// `POST /logout`: ends the session.
pub async fn logout(State(web): State<Web>, headers: HeaderMap, Form(form): Form<CancelForm>) -> Response {
    if let Err(refusal) = changer(&web, &headers, Some(&form.csrf)) {
        return refusal.for_page();
    }
    let cleared: HeaderValue = sessions::sign_out(&web, &headers);
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(header::SET_COOKIE, cleared);
    response
}
