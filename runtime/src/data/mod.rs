//! Records as the runtime holds them: typed, columnar batches.
//!
//! ```text
//!  Batch { timestamps: [i64; n], columns: [Column; fields],
//!          kinds (changelog streams), origins (before a dead-lettering stage) }
//!  Column { ty, data: I64 | F64 | Bool | Str (UTF-8 bytes + offsets, or dictionary ids)
//!                     | List (offsets into a column of elements),
//!           validity: none (no nulls) | a bitmap }
//! ```
//!
//! The compiler's schema says what each column holds; operators compile
//! their expressions against it once and then work a batch at a time
//! (`expr`, `operators`). Owned scalars ([`Value`](crate::record::Value))
//! remain for constants, keys held in state, accumulators and the
//! checkpoint formats. [`wire`] is the data plane's encoding of a batch.

pub mod batch;
pub mod column;
pub mod list;
pub mod origins;
pub mod strings;
pub mod validity;
pub mod value;
pub mod wire;

pub use batch::{Batch, RowKind};
pub use column::{Column, Data, ListColumn, StrColumn};
pub use origins::{Origin, Origins};
pub use validity::Validity;
pub use value::{ArrayRef, ValueRef};
