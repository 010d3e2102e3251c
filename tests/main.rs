//! Integration tests: the real `ims-patch` binary, run with a clean
//! environment against a local sandbox server (or a canned one), and, when
//! `IMS_PATCH_GLANCE_URL` is set, against a real Glance.

mod support;

mod against_glance;
mod aksk;
mod aksk_cli;
mod architecture;
mod batch;
mod commands;
mod completion;
mod config;
mod conformance;
mod errors;
mod generated;
mod hardening;
mod keystone_conformance;
mod login;
mod login_keystone;
mod login_sandbox;
mod osc;
mod output;
mod people_and_scripts;
mod sandbox;
mod sandbox_run;
mod tls;
