//! Connector sessions on their own threads.
//!
//! WebAssembly is CPU work. Each run's session lives on a dedicated thread with a small
//! single-threaded runtime, and the run talks to it over channels, so the server's async
//! workers — which answer HTTP requests for every tenant — never execute connector code, however
//! busy or hostile a connector is. (Within its thread the guest still yields at every epoch
//! tick, which is what lets the per-call deadline fire.)

use std::{collections::HashMap, sync::Arc};

use tokio::sync::{mpsc, oneshot};
use trainflow_connectors::{
    CallError, ConnectorHost, Grants, HttpRefusal, Limits, LogLine, Page, PageRequest, StreamInfo,
};

enum Command {
    Discover(String, oneshot::Sender<Result<Vec<StreamInfo>, CallError>>),
    ReadPage(String, PageRequest, oneshot::Sender<PageReply>),
    Finish(oneshot::Sender<Report>),
}

/// A page, and the key-value store as the connector left it.
pub type PageReply = (Result<Page, CallError>, HashMap<String, Vec<u8>>);

/// What the session measured, when it ends.
#[derive(Debug, Default)]
pub struct Report {
    pub logs: Vec<LogLine>,
    pub logs_dropped: usize,
    pub fuel: u64,
    pub peak_memory: usize,
    pub http_refusals: Vec<HttpRefusal>,
}

/// The run's handle on its session thread.
pub struct Worker {
    commands: mpsc::UnboundedSender<Command>,
}

fn gone() -> CallError {
    CallError::Trapped("the connector's session ended unexpectedly".into())
}

impl Worker {
    /// Starts a thread, instantiates the component there, and returns once it is ready.
    pub async fn start(
        host: Arc<ConnectorHost>,
        digest: String,
        grants: Grants,
        limits: Limits,
    ) -> anyhow::Result<Worker> {
        let (commands, mut inbox) = mpsc::unbounded_channel::<Command>();
        let (ready, started) = oneshot::channel::<anyhow::Result<()>>();
        std::thread::Builder::new()
            .name("connector-run".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready.send(Err(e.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut session = match host.session(&digest, grants, limits).await {
                        Ok(s) => {
                            let _ = ready.send(Ok(()));
                            s
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    };
                    while let Some(command) = inbox.recv().await {
                        match command {
                            Command::Discover(config, reply) => {
                                let _ = reply.send(session.discover(&config).await);
                            }
                            Command::ReadPage(config, request, reply) => {
                                let page = session.read_page(&config, &request).await;
                                let _ = reply.send((page, session.kv().clone()));
                            }
                            Command::Finish(reply) => {
                                let (lines, dropped) = session.logs();
                                let _ = reply.send(Report {
                                    logs: lines.to_vec(),
                                    logs_dropped: dropped,
                                    fuel: session.total.fuel,
                                    peak_memory: session.peak_memory(),
                                    http_refusals: session.http_refusals(),
                                });
                                return;
                            }
                        }
                    }
                });
            })?;
        started
            .await
            .map_err(|_| anyhow::anyhow!("the connector thread stopped while starting"))??;
        Ok(Worker { commands })
    }

    /// The connector's streams for `config`.
    pub async fn discover(&self, config: &str) -> Result<Vec<StreamInfo>, CallError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Discover(config.to_string(), reply))
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// One page.
    pub async fn read_page(&self, config: &str, request: PageRequest) -> PageReply {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::ReadPage(config.to_string(), request, reply))
            .is_err()
        {
            return (Err(gone()), HashMap::new());
        }
        answer
            .await
            .unwrap_or_else(|_| (Err(gone()), HashMap::new()))
    }

    /// Ends the session and returns its logs and measurements.
    pub async fn finish(self) -> Report {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Finish(reply)).is_err() {
            return Report::default();
        }
        answer.await.unwrap_or_default()
    }
}
