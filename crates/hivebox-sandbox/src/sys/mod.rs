//! The crate's kernel calls that need `unsafe`, each with a `// SAFETY:` comment.

#![allow(unsafe_code)]
