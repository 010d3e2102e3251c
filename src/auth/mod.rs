//! Logging in like the OpenStack clients: where the login settings come from
//! ([`clouds`]: clouds.yaml, secure.yaml, `OS_*`), the Keystone v3 token
//! request and answer with the catalog's image endpoint ([`keystone`]), and
//! the on-disk token cache ([`cache`]). Pure building blocks: no HTTP here.

pub mod cache;
pub mod clouds;
pub mod keystone;
