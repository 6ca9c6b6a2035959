//! Names the results contract spells in more than one place.

/// The figures of all operations together (a flow's end-to-end `execution` excluded).
pub const TOTALS: &str = "totals";

/// A flow's end-to-end figure: one whole execution, created to completed.
pub const FLOW_EXECUTION: &str = "execution";

/// The operations a flow records, in order; the first is the end-to-end figure.
pub const FLOW_OPS: [&str; 7] = [
    FLOW_EXECUTION,
    "create_execution",
    "add_step",
    "update_step",
    "append_logs",
    "add_artifact",
    "update_status",
];

/// The kinds of scenario (executors) results name in `kind`.
pub const SCENARIO_KINDS: [&str; 4] = ["mix", "per_endpoint", "burst", "flow"];
