//! hivebox-core's integration tests.
//!
//! * `conformance_k` / `conformance_e`: the regfltr kernel-mode scenarios (K1..K11, with the
//!   transaction ones K5 and K6) and the extra cases E1..E13 of `reference/cm-callbacks.md` section 3,
//!   one test per scenario (see `docs/conformance.md`).
//! * `ops`: every registry operation on its own (statuses, access, names, links, watches).
//! * `model`: a property test comparing random operation sequences against a reference model.
//! * `replace`: `NtReplaceKey` through the callbacks, and what it refuses.
//! * `txn`: transactions (isolation, commit, rollback, conflicts, what reaches the store).

mod common;
mod conformance_e;
mod conformance_k;
mod dispatch;
mod hives;
mod isolate;
mod isolate_model;
mod model;
mod ops;
mod replace;
mod txn;
mod unfiltered;
