//! The flowc language server (`flowc lsp`): diagnostics, hover,
//! completion, go to definition, references, document symbols and
//! formatting for `.flow` files, over stdio (JSON-RPC, the Language Server
//! Protocol).
//!
//! ```text
//!  editor ──didOpen/didChange──▶ main loop: text ──parse+check──▶ Arc<Analysis> ──▶ publishDiagnostics
//!         ──hover/completion/…─▶ worker thread: answered from the snapshot
//! ```
//!
//! Built on rust-analyzer's `lsp-server` (a synchronous JSON-RPC
//! connection, no async runtime) and `lsp-types`. Everything it knows of
//! the language comes from `flowc-dsl` (parser, formatter, names) and
//! `flowc-compiler` (checker, its record of the schema at every stage, and
//! the catalog of stages, options and functions, and the `pub fn`s of the
//! job's `use rust` files, which it reads from disk beside the job): a
//! function or option the checker accepts is offered and explained without
//! a change here.

pub mod analysis;
pub mod complete;
pub mod context;
pub mod hover;
pub mod lines;
pub mod navigate;
pub mod server;
pub mod udfs;

use lsp_server::Connection;

#[derive(Debug, thiserror::Error)]
pub enum LspError {
    #[error("the connection to the editor broke: {0}")]
    Protocol(String),
    #[error("the editor went away")]
    Disconnected,
    #[error("I/O error: {0}")]
    Io(std::io::Error),
}

/// Serves one editor on stdin/stdout until it sends `exit`.
pub fn run_stdio() -> Result<(), LspError> {
    let (connection, io_threads) = Connection::stdio();
    serve(&connection)?;
    drop(connection);
    io_threads.join().map_err(LspError::Io)
}

/// Serves one editor on a connection: the handshake, then the main loop.
pub fn serve(connection: &Connection) -> Result<(), LspError> {
    let (id, _params) = connection.initialize_start().map_err(|e| LspError::Protocol(e.to_string()))?;
    let result = lsp_types::InitializeResult {
        capabilities: server::capabilities(),
        server_info: Some(lsp_types::ServerInfo {
            name: "flowc".to_string(),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
        }),
    };
    let value = serde_json::to_value(result).map_err(|e| LspError::Protocol(e.to_string()))?;
    connection.initialize_finish(id, value).map_err(|e| LspError::Protocol(e.to_string()))?;
    server::main_loop(connection)
}
