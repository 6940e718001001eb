//! Targets and their resolution: the syntax a user types (`[USER@]TARGET`:
//! an ID, private IP, private DNS name, `tag:KEY=VALUE` or Name tag), the
//! EC2 lookups that find the instances and endpoints it names, the choice
//! of one instance (the picker, "did you mean"), its resolution into a
//! route, and the cache of routes found before.

pub mod cache;
pub mod choose;
pub mod find;
pub mod resolve;
pub mod route;
pub mod syntax;

pub use route::{Destination, KeyPush, Prefetched, Route};
pub use syntax::{Target, TargetExpr};
