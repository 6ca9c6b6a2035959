//! `GET /performance/recommendations`: derived each time from the database and the workload
//! observed, never canned.
//!
//! - every query the API's reads make is run through `EXPLAIN QUERY PLAN`; one that scans a
//!   table it filters, or sorts in a temporary B-tree, gets the `CREATE INDEX` that serves its
//!   equality filters and its order (read off the query itself);
//! - the PRAGMAs of the connection that writes (the writer thread's, or a legacy connection)
//!   are compared with the write-up's optimized settings, each difference with its reason;
//! - the legacy profile's connection per operation is measured (what opening one costs, times
//!   the operations seen) and connection reuse recommended;
//! - fragmentation (`freelist_count / page_count` above 0.3) recommends VACUUM, missing or
//!   stale planner statistics ANALYZE, a large WAL a checkpoint.

use super::Perf;
use crate::monitor::storage::{Profile, Storage, StorageError, READ_QUERIES};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Instant;

/// Free pages over all pages above which VACUUM is recommended.
pub const FRAGMENTATION_LIMIT: f64 = 0.3;

#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    /// What it is about: index, journal_mode, synchronous, cache_size, temp_store, mmap_size,
    /// wal_autocheckpoint, connection_reuse, vacuum, analyze, checkpoint.
    pub kind: &'static str,
    /// high, medium or low.
    pub severity: &'static str,
    pub title: String,
    pub why: String,
    /// SQL to run, or the `POST /performance/optimize` action that does it, or a setting.
    pub fix: Value,
    /// The figures it was derived from.
    pub measured: Value,
}

/// The PRAGMAs of the connection that writes.
#[derive(Debug, Clone, Serialize)]
pub struct Pragmas {
    pub journal_mode: String,
    pub synchronous: i64,
    pub cache_size: i64,
    pub temp_store: i64,
    pub mmap_size: i64,
    pub wal_autocheckpoint: i64,
    pub page_size: i64,
    pub page_count: i64,
    pub freelist_count: i64,
}

fn read_pragmas(conn: &Connection) -> rusqlite::Result<Pragmas> {
    let int = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
    Ok(Pragmas {
        journal_mode: conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
        synchronous: int("synchronous")?,
        cache_size: int("cache_size")?,
        temp_store: int("temp_store")?,
        mmap_size: int("mmap_size")?,
        wal_autocheckpoint: int("wal_autocheckpoint")?,
        page_size: int("page_size")?,
        page_count: int("page_count")?,
        freelist_count: int("freelist_count")?,
    })
}

/// What the query analysis found, from a connection of its own.
struct Analysis {
    plans: Vec<(&'static str, &'static str, Vec<String>)>,
    /// Rows the planner's statistics say each table had, and how many it has now.
    stats: Vec<(String, Option<i64>, i64)>,
    stat1_exists: bool,
    open_connection_us: f64,
}

fn analyse(path: &std::path::Path) -> Result<Analysis, StorageError> {
    let started = Instant::now();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // What a legacy operation pays before its statement: open, and read the schema.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })?;
    let open_connection_us = started.elapsed().as_secs_f64() * 1e6;
    let mut plans = Vec::new();
    for (op, sql) in READ_QUERIES {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        // The plan does not depend on the values; NULLs fill the parameters.
        let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
        let detail: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))?
            .collect::<rusqlite::Result<_>>()?;
        plans.push((*op, *sql, detail));
    }
    let stat1_exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'sqlite_stat1'",
        [],
        |r| r.get(0),
    )?;
    let mut stats = Vec::new();
    for table in ["executions", "steps", "artifacts"] {
        let now: i64 =
            conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        let analysed: Option<i64> = if stat1_exists {
            conn.query_row(
                "SELECT max(CAST(stat AS INTEGER)) FROM sqlite_stat1 WHERE tbl = ?1",
                [table],
                |r| r.get(0),
            )?
        } else {
            None
        };
        stats.push((table.to_string(), analysed, now));
    }
    Ok(Analysis {
        plans,
        stats,
        stat1_exists,
        open_connection_us,
    })
}

/// The table a query reads, its equality-filtered columns and its ORDER BY columns.
pub fn query_shape(sql: &str) -> Option<(String, Vec<String>, Vec<String>)> {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let from = upper.iter().position(|w| w == "FROM")?;
    let table = words.get(from + 1)?.trim_end_matches(';').to_string();
    let clause_end = |start: usize| {
        (start..words.len())
            .find(|&i| matches!(upper[i].as_str(), "ORDER" | "LIMIT" | "GROUP"))
            .unwrap_or(words.len())
    };
    let mut eq = Vec::new();
    if let Some(w) = upper.iter().position(|w| w == "WHERE") {
        let end = clause_end(w + 1);
        let mut terms = vec![String::new()];
        for i in w + 1..end {
            if upper[i] == "AND" {
                terms.push(String::new());
            } else if let Some(t) = terms.last_mut() {
                t.push_str(words[i]);
                t.push(' ');
            }
        }
        for term in &terms {
            if let Some((col, value)) = term.split_once('=') {
                let col = col.trim();
                if value.trim().starts_with('?')
                    && !col.is_empty()
                    && col.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !eq.iter().any(|c: &String| c == col)
                {
                    eq.push(col.to_string());
                }
            }
        }
    }
    let mut order = Vec::new();
    if let Some(o) = (0..upper.len())
        .find(|&i| upper[i] == "ORDER" && upper.get(i + 1).map(String::as_str) == Some("BY"))
    {
        let end = (o + 2..words.len())
            .find(|&i| matches!(upper[i].as_str(), "LIMIT"))
            .unwrap_or(words.len());
        for part in words[o + 2..end].join(" ").split(',') {
            let col = part
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            if !col.is_empty() {
                order.push(col);
            }
        }
    }
    Some((table, eq, order))
}

/// The index recommendation for one query's plan, if its plan needs one.
pub fn index_for(op: &str, sql: &str, plan: &[String], observed: u64) -> Option<Recommendation> {
    let (table, eq, order) = query_shape(sql)?;
    let scans_filtered =
        !eq.is_empty() && plan.iter().any(|d| d.starts_with(&format!("SCAN {table}")));
    let sorts = plan
        .iter()
        .any(|d| d.contains("USE TEMP B-TREE FOR ORDER BY"));
    if !scans_filtered && !sorts {
        return None;
    }
    let mut cols = eq.clone();
    for c in &order {
        if !cols.contains(c) {
            cols.push(c.clone());
        }
    }
    // A rowid table keeps its rowid in every index; naming `id` last is harmless and makes
    // the order explicit, as the schema's own indexes do.
    let name = format!("{table}_by_{}", cols.join("_"));
    let create = format!(
        "CREATE INDEX IF NOT EXISTS {name} ON {table} ({})",
        cols.join(", ")
    );
    let what = match (scans_filtered, sorts) {
        (true, true) => "scans the table and sorts the result",
        (true, false) => "scans the whole table",
        _ => "sorts its result in a temporary B-tree",
    };
    let sql_one_line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(Recommendation {
        kind: "index",
        severity: if observed > 0 { "high" } else { "medium" },
        title: format!("add an index on {table} ({})", cols.join(", ")),
        why: format!(
            "the {op} query `{sql_one_line}` {what} (EXPLAIN QUERY PLAN: {}); an index on its \
             filter then its order reads only the rows it returns, in order",
            plan.join("; ")
        ),
        fix: json!({ "sql": create }),
        measured: json!({ "operation": op, "observed": observed, "plan": plan, "query": sql_one_line }),
    })
}

/// Derives every recommendation now.
pub async fn derive(storage: &Storage, perf: &Perf) -> Result<Value, StorageError> {
    let pragmas = storage
        .maintain(|conn| read_pragmas(conn).map_err(StorageError::from))
        .await?;
    let path = storage.db_path().to_path_buf();
    let analysis = tokio::task::spawn_blocking(move || analyse(&path))
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e.to_string())))??;
    let stats = storage.stats();
    let observed = |op: &str| stats.operations.get(op).map_or(0, |s| s.count);
    let mut out = Vec::new();

    for (op, sql, plan) in &analysis.plans {
        if let Some(r) = index_for(op, sql, plan, observed(op)) {
            // Two queries needing the same index give it once.
            if !out.iter().any(|o: &Recommendation| o.fix == r.fix) {
                out.push(r);
            }
        }
    }

    let p = &pragmas;
    let wal = p.journal_mode.eq_ignore_ascii_case("wal");
    let all_ops: u64 = stats.operations.values().map(|s| s.count).sum();
    if !wal {
        out.push(Recommendation {
            kind: "journal_mode",
            severity: "high",
            title: "use the write-ahead log: PRAGMA journal_mode = WAL".into(),
            why: format!(
                "journal_mode is {}: every write locks the whole database against readers and \
                 each commit rewrites a rollback journal; with WAL readers run beside the \
                 writer and a commit is one sequential append",
                p.journal_mode
            ),
            fix: json!({ "sql": "PRAGMA journal_mode = WAL", "profile": "optimized" }),
            measured: json!({ "journal_mode": p.journal_mode }),
        });
    }
    if p.synchronous != 1 {
        out.push(Recommendation {
            kind: "synchronous",
            severity: "high",
            title: "PRAGMA synchronous = NORMAL, with WAL".into(),
            why: format!(
                "synchronous is {} ({}): an fsync on every commit. With WAL, NORMAL syncs at \
                 checkpoints only; a committed write still survives the process being killed \
                 (only an OS crash or power loss can take the last commits)",
                p.synchronous,
                ["OFF", "NORMAL", "FULL", "EXTRA"]
                    .get(p.synchronous as usize)
                    .unwrap_or(&"?")
            ),
            fix: json!({ "sql": "PRAGMA synchronous = NORMAL", "profile": "optimized" }),
            measured: json!({ "synchronous": p.synchronous, "journal_mode": p.journal_mode }),
        });
    }
    if storage.profile() == Profile::Legacy {
        out.push(Recommendation {
            kind: "connection_reuse",
            severity: "high",
            title: "reuse connections instead of opening one per operation".into(),
            why: format!(
                "this profile opens a new connection for every operation: {all_ops} so far. \
                 Opening one and reading its schema took {:.0} µs just now, each time with an \
                 empty page cache and no prepared statements; one writer connection and a pool \
                 of readers with cached statements pay it once",
                analysis.open_connection_us
            ),
            fix: json!({ "profile": "optimized" }),
            measured: json!({
                "operations": all_ops,
                "open_connection_us": analysis.open_connection_us,
            }),
        });
    }
    let cache_bytes = if p.cache_size < 0 {
        -p.cache_size * 1024
    } else {
        p.cache_size * p.page_size
    };
    let wanted_cache = 10_000 * p.page_size;
    if cache_bytes < wanted_cache {
        out.push(Recommendation {
            kind: "cache_size",
            severity: "medium",
            title: "PRAGMA cache_size = 10000".into(),
            why: format!(
                "the page cache holds {} KiB; 10,000 pages ({} KiB) keep the indexes the API \
                 reads in memory",
                cache_bytes / 1024,
                wanted_cache / 1024
            ),
            fix: json!({ "sql": "PRAGMA cache_size = 10000" }),
            measured: json!({ "cache_size": p.cache_size, "page_size": p.page_size }),
        });
    }
    if p.temp_store != 2 {
        out.push(Recommendation {
            kind: "temp_store",
            severity: "low",
            title: "PRAGMA temp_store = MEMORY".into(),
            why: format!(
                "temp_store is {}: temporary tables and sorts may go to files",
                p.temp_store
            ),
            fix: json!({ "sql": "PRAGMA temp_store = MEMORY" }),
            measured: json!({ "temp_store": p.temp_store }),
        });
    }
    if p.mmap_size < 268_435_456 {
        out.push(Recommendation {
            kind: "mmap_size",
            severity: "medium",
            title: "PRAGMA mmap_size = 268435456".into(),
            why: format!(
                "mmap_size is {}: reads copy every page through read(); mapping the first \
                 256 MiB serves them from the page cache directly",
                p.mmap_size
            ),
            fix: json!({ "sql": "PRAGMA mmap_size = 268435456" }),
            measured: json!({ "mmap_size": p.mmap_size }),
        });
    }
    if wal {
        // The optimized writer replaces SQLite's automatic checkpoint with its own WAL hook
        // (the pragma then reads 0); the threshold in force is the storage's.
        let threshold = storage
            .wal_limits()
            .map(|l| l.checkpoint_pages)
            .unwrap_or(p.wal_autocheckpoint);
        if threshold <= 0 || threshold > 10_000 {
            out.push(Recommendation {
                kind: "wal_autocheckpoint",
                severity: "medium",
                title: "checkpoint the WAL every 1000 pages".into(),
                why: format!(
                    "the WAL is checkpointed at {threshold} pages (0: never): it grows \
                     without bound and reads slow down walking it"
                ),
                fix: json!({ "sql": "PRAGMA wal_autocheckpoint = 1000" }),
                measured: json!({ "checkpoint_pages": threshold }),
            });
        }
    }

    let fragmentation = if p.page_count > 0 {
        p.freelist_count as f64 / p.page_count as f64
    } else {
        0.0
    };
    if fragmentation > FRAGMENTATION_LIMIT {
        out.push(Recommendation {
            kind: "vacuum",
            severity: "medium",
            title: "VACUUM the database".into(),
            why: format!(
                "{} of its {} pages ({:.0} %) are free: the file is larger than its data and \
                 rows are spread thinly; VACUUM rebuilds it compactly",
                p.freelist_count,
                p.page_count,
                fragmentation * 100.0
            ),
            fix: json!({ "action": "vacuum" }),
            measured: json!({
                "freelist_count": p.freelist_count,
                "page_count": p.page_count,
                "fragmentation": fragmentation,
                "limit": FRAGMENTATION_LIMIT,
            }),
        });
    }

    let rows: i64 = analysis.stats.iter().map(|s| s.2).sum();
    if !analysis.stat1_exists && rows > 0 {
        out.push(Recommendation {
            kind: "analyze",
            severity: "low",
            title: "ANALYZE: the planner has no statistics".into(),
            why: format!(
                "sqlite_stat1 does not exist and the tables hold {rows} rows: the planner \
                 guesses how selective each index is"
            ),
            fix: json!({ "action": "analyze" }),
            measured: json!({ "stat1": false, "rows": rows }),
        });
    } else if analysis.stat1_exists {
        let stale: Vec<Value> = analysis
            .stats
            .iter()
            .filter(|(_, analysed, now)| match analysed {
                None => *now > 0,
                Some(a) => {
                    let (a, n) = (*a as f64, *now as f64);
                    (n - a).abs() >= 100.0 && (n > 2.0 * a || n < a / 2.0)
                }
            })
            .map(|(t, a, n)| json!({ "table": t, "rows_analysed": a, "rows_now": n }))
            .collect();
        if !stale.is_empty() {
            out.push(Recommendation {
                kind: "analyze",
                severity: "low",
                title: "ANALYZE: the planner's statistics are stale".into(),
                why: "tables have grown or shrunk by more than half since their statistics \
                      were gathered"
                    .into(),
                fix: json!({ "action": "analyze" }),
                measured: json!({ "stat1": true, "tables": stale }),
            });
        }
    }

    let wal_bytes = storage.wal_bytes();
    let wal_limit_mb = perf
        .config
        .alerts
        .rules
        .get("wal_mb")
        .and_then(|t| t.warning)
        .unwrap_or(50.0);
    if wal_bytes as f64 / 1e6 > wal_limit_mb {
        out.push(Recommendation {
            kind: "checkpoint",
            severity: "medium",
            title: "checkpoint the WAL".into(),
            why: format!(
                "the WAL is {:.1} MB, above {wal_limit_mb} MB: readers walk it and the next \
                 checkpoint will be long",
                wal_bytes as f64 / 1e6
            ),
            fix: json!({ "action": "checkpoint" }),
            measured: json!({ "wal_bytes": wal_bytes, "limit_mb": wal_limit_mb }),
        });
    }

    let checked: Vec<Value> = analysis
        .plans
        .iter()
        .map(|(op, sql, plan)| {
            json!({
                "operation": op,
                "query": sql.split_whitespace().collect::<Vec<_>>().join(" "),
                "plan": plan,
            })
        })
        .collect();
    Ok(json!({
        "profile": storage.profile().as_str(),
        "generated_at": crate::monitor::model::now_rfc3339(),
        "recommendations": out,
        "pragmas": pragmas,
        "wal_bytes": wal_bytes,
        "queries": checked,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_shapes_are_read_off_the_sql() {
        let (t, eq, order) = query_shape(
            "SELECT a, b FROM executions WHERE status = ?1
             ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3",
        )
        .unwrap();
        assert_eq!(t, "executions");
        assert_eq!(eq, ["status"]);
        assert_eq!(order, ["created_at", "id"]);
        let (t, eq, order) =
            query_shape("SELECT 1 FROM steps WHERE execution_id = ?1 AND idx = ?2").unwrap();
        assert_eq!(
            (t.as_str(), eq, order),
            (
                "steps",
                vec!["execution_id".to_string(), "idx".to_string()],
                vec![]
            )
        );
    }

    #[test]
    fn a_scan_gets_the_index_of_its_filter_and_order() {
        let sql = "SELECT id FROM artifacts WHERE execution_id = ?1 ORDER BY id";
        let r = index_for("point_select", sql, &["SCAN artifacts".into()], 3).unwrap();
        assert_eq!(
            r.fix["sql"],
            "CREATE INDEX IF NOT EXISTS artifacts_by_execution_id_id ON artifacts (execution_id, id)"
        );
        assert_eq!(r.severity, "high");
        // Served by an index: nothing to recommend.
        let plan = ["SEARCH artifacts USING INDEX artifacts_by_execution (execution_id=?)".into()];
        assert!(index_for("point_select", sql, &plan, 3).is_none());
        // An ordered walk of an index for a query with no filter is what it should do.
        let all = "SELECT id FROM executions ORDER BY created_at DESC, id DESC LIMIT ?1";
        let plan = ["SCAN executions USING INDEX executions_by_created".into()];
        assert!(index_for("list", all, &plan, 3).is_none());
        let plan = [
            "SCAN executions".into(),
            "USE TEMP B-TREE FOR ORDER BY".into(),
        ];
        let r = index_for("list", all, &plan, 0).unwrap();
        assert_eq!(
            r.fix["sql"],
            "CREATE INDEX IF NOT EXISTS executions_by_created_at_id ON executions (created_at, id)"
        );
    }
}
