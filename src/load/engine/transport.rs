//! The transport a run's executors call through: any `Transport`, from the run's
//! `Connector`, cut short as soon as the run stops.

use super::*;
use crate::load::transport::DynTransport;

/// Any transport, so executors need no generics; every call is cut short when the run stops
/// (Ctrl-C, an abort), in set-up, under load and in the read-back alike, so that a target
/// that stopped answering cannot hold the run for the length of a request timeout.
pub struct RunTransport {
    inner: Box<dyn DynTransport>,
    control: Arc<Control>,
}

impl RunTransport {
    pub fn new(connector: &dyn Connector, control: &Arc<Control>) -> RunTransport {
        RunTransport {
            inner: connector.open(),
            control: Arc::clone(control),
        }
    }
}

/// `fut`'s outcome, or `CallError::Stopped` as soon as the run stops.
async fn unless_stopped<T>(
    control: &Control,
    fut: impl std::future::Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    tokio::select! {
        biased;
        r = fut => r,
        () = control.until_stopped() => Err(CallError::Stopped),
    }
}

impl Transport for RunTransport {
    async fn connect(&mut self) -> Result<(), CallError> {
        unless_stopped(&self.control, self.inner.connect()).await
    }
    async fn call(&mut self, call: &Call) -> Result<Reply, CallError> {
        unless_stopped(&self.control, self.inner.call(call)).await
    }
    async fn page(&mut self, limit: u32, offset: u64) -> Result<Page, CallError> {
        unless_stopped(&self.control, self.inner.page(limit, offset)).await
    }
    async fn execution(&mut self, id: &ExecId) -> Result<ExecutionDetail, CallError> {
        unless_stopped(&self.control, self.inner.execution(id)).await
    }
    async fn logs(&mut self, id: &ExecId, index: i64) -> Result<Vec<String>, CallError> {
        unless_stopped(&self.control, self.inner.logs(id, index)).await
    }
    async fn artifacts(&mut self, id: &ExecId) -> Result<Vec<ArtifactRow>, CallError> {
        unless_stopped(&self.control, self.inner.artifacts(id)).await
    }
}
