//! hivebox-core's integration tests.
//!
//! * `conformance_k` / `conformance_e`: the regfltr kernel-mode scenarios (K1..K11, without
//!   the transaction ones) and the extra cases E1..E13 of `reference/cm-callbacks.md` section 3,
//!   one test per scenario (see `docs/conformance.md`).
//! * `ops`: every registry operation on its own (statuses, access, names, links, watches).
//! * `model`: a property test comparing random operation sequences against a reference model.

mod common;
mod conformance_e;
mod conformance_k;
mod dispatch;
mod hives;
mod model;
mod ops;
mod unfiltered;
