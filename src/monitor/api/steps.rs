//! The handlers below one execution: its status, its steps and their logs, its artifacts.

use super::*;

/// The path parameter of an execution's routes.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Describes the path; the handlers parse it with `parse_id`.
pub(super) struct ExecutionPath {
    /// The execution's id.
    #[param(minimum = 0, maximum = 9223372036854775807_usize)]
    pub(super) id: i64,
}

/// The path parameters of a step's routes.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Describes the path; the handlers parse it with `parse_id`.
pub(super) struct StepPath {
    /// The execution's id.
    #[param(minimum = 0, maximum = 9223372036854775807_usize)]
    pub(super) id: i64,
    /// The step's index: 0 for the first step added, then 1, 2, ...
    #[param(minimum = 0, maximum = 9223372036854775807_usize)]
    pub(super) index: i64,
}

/// A new status.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusBody {
    #[schema(value_type = Status)]
    pub(super) status: String,
}

/// Sets an execution's status (any status may follow any other).
#[utoipa::path(
    patch,
    path = "/api/executions/{id}",
    tag = "executions",
    params(ExecutionPath),
    request_body = StatusBody,
    responses(
        (status = 200, description = "Updated and committed; the execution", body = Execution),
        BadRequestError,
        NotFoundError,
        BodyErrors,
        WriteErrors,
        ServiceErrors,
        ProtocolErrors,
    )
)]
pub(super) async fn update_status(
    State(state): St,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<StatusBody>,
) -> AppResult<Json<Execution>> {
    let id = parse_id(&id, "execution id")?;
    let status = parse_status(&body.status)?;
    Ok(Json(state.storage.update_status(id, status).await?))
}

/// A new step.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NameBody {
    /// Not empty nor only white space, at most 1024 characters.
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub(super) name: String,
}

/// Adds a step to an execution, status `pending`, with the next index.
#[utoipa::path(
    post,
    path = "/api/executions/{id}/steps",
    tag = "steps",
    params(ExecutionPath),
    request_body = NameBody,
    responses(
        (status = 201, description = "Created and committed; the step", body = Step),
        BadRequestError,
        NotFoundError,
        BodyErrors,
        WriteErrors,
        ServiceErrors,
        ProtocolErrors,
    )
)]
pub(super) async fn add_step(
    State(state): St,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<NameBody>,
) -> AppResult<Response> {
    let id = parse_id(&id, "execution id")?;
    check_name(&body.name, "name")?;
    let step = state.storage.add_step(id, body.name).await?;
    Ok((StatusCode::CREATED, Json(step)).into_response())
}

/// Sets a step's status.
#[utoipa::path(
    patch,
    path = "/api/executions/{id}/steps/{index}",
    tag = "steps",
    params(StepPath),
    request_body = StatusBody,
    responses(
        (status = 200, description = "Updated and committed; the step", body = Step),
        BadRequestError,
        NotFoundError,
        BodyErrors,
        WriteErrors,
        ServiceErrors,
        ProtocolErrors,
    )
)]
pub(super) async fn update_step(
    State(state): St,
    PathParams((id, index)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<StatusBody>,
) -> AppResult<Json<Step>> {
    let id = parse_id(&id, "execution id")?;
    let index = parse_id(&index, "step index")?;
    let status = parse_status(&body.status)?;
    Ok(Json(state.storage.update_step(id, index, status).await?))
}

/// Log lines to append.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LogsBody {
    /// Any text each, newlines included; read back exactly as sent.
    #[schema(min_items = 1)]
    pub(super) lines: Vec<String>,
}

/// What an append stored.
#[derive(Serialize, ToSchema)]
pub(super) struct LogsAppended {
    #[schema(minimum = 0)]
    pub(super) execution_id: i64,
    #[schema(minimum = 0)]
    pub(super) index: i64,
    /// Lines appended: all that were sent.
    #[schema(minimum = 1)]
    pub(super) appended: usize,
    /// The timestamp given to the first of them.
    #[schema(format = DateTime)]
    pub(super) timestamp: String,
}

/// Appends timestamped lines to a step's log, all or nothing.
#[utoipa::path(
    post,
    path = "/api/executions/{id}/steps/{index}/logs",
    tag = "steps",
    params(StepPath),
    request_body = LogsBody,
    responses(
        (status = 201, description = "Appended and on disk", body = LogsAppended),
        BadRequestError,
        NotFoundError,
        BodyErrors,
        WriteErrors,
        ServiceErrors,
        ProtocolErrors,
    )
)]
pub(super) async fn append_logs(
    State(state): St,
    PathParams((id, index)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<LogsBody>,
) -> AppResult<Response> {
    let id = parse_id(&id, "execution id")?;
    let index = parse_id(&index, "step index")?;
    if body.lines.is_empty() {
        return Err(ApiError::Unprocessable("lines must not be empty".into()));
    }
    let lines = state.storage.append_logs(id, index, body.lines).await?;
    let first = lines.first().ok_or_else(|| {
        ApiError::Internal(format!("appending to step {index} of {id} stored no line"))
    })?;
    let body = LogsAppended {
        execution_id: id,
        index,
        appended: lines.len(),
        timestamp: first.timestamp.clone(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A step's log.
#[derive(Serialize, ToSchema)]
pub(super) struct LogLines {
    /// In the order appended.
    pub(super) lines: Vec<LogLine>,
}

/// Reads a step's whole log.
#[utoipa::path(
    get,
    path = "/api/executions/{id}/steps/{index}/logs",
    tag = "steps",
    params(StepPath),
    responses(
        (status = 200, description = "Every line appended so far", body = LogLines),
        BadRequestError,
        NotFoundError,
        ServiceErrors,
        ProtocolErrors,
    )
)]
pub(super) async fn read_logs(
    State(state): St,
    PathParams((id, index)): PathParams<(String, String)>,
) -> AppResult<Json<LogLines>> {
    let id = parse_id(&id, "execution id")?;
    let index = parse_id(&index, "step index")?;
    let lines = state.storage.read_logs(id, index).await?;
    Ok(Json(LogLines { lines }))
}

/// A new artifact.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ArtifactBody {
    /// Not empty nor only white space, at most 1024 characters.
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub(super) name: String,
    /// Any text (the whole request body is limited to 1 MiB).
    pub(super) content: String,
}

/// Attaches an artifact to an execution.
#[utoipa::path(
    post,
    path = "/api/executions/{id}/artifacts",
    tag = "artifacts",
    params(ExecutionPath),
    request_body = ArtifactBody,
    responses(
        (status = 201, description = "Created and committed; the artifact", body = Artifact),
        BadRequestError,
        NotFoundError,
        BodyErrors,
        WriteErrors,
        ServiceErrors,
        ProtocolErrors,
    )
)]
pub(super) async fn add_artifact(
    State(state): St,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<ArtifactBody>,
) -> AppResult<Response> {
    let id = parse_id(&id, "execution id")?;
    check_name(&body.name, "name")?;
    let artifact = state
        .storage
        .add_artifact(id, body.name, body.content)
        .await?;
    Ok((StatusCode::CREATED, Json(artifact)).into_response())
}

/// An execution's artifacts.
#[derive(Serialize, ToSchema)]
pub(super) struct ArtifactList {
    /// In the order added.
    pub(super) artifacts: Vec<Artifact>,
}

/// Lists an execution's artifacts, contents included.
#[utoipa::path(
    get,
    path = "/api/executions/{id}/artifacts",
    tag = "artifacts",
    params(ExecutionPath),
    responses(
        (status = 200, description = "Every artifact of the execution", body = ArtifactList),
        BadRequestError,
        NotFoundError,
        ServiceErrors,
        ProtocolErrors,
    )
)]
pub(super) async fn list_artifacts(
    State(state): St,
    PathParams(id): PathParams<String>,
) -> AppResult<Json<ArtifactList>> {
    let id = parse_id(&id, "execution id")?;
    let artifacts = state.storage.list_artifacts(id).await?;
    Ok(Json(ArtifactList { artifacts }))
}
