//! flowc runtime (placeholder until the runtime lands).
