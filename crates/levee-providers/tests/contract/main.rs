//! Contract tests: each provider against a local server that enforces its
//! vendor's documented API (method, path, auth, body schema, error shapes)
//! and keeps state, so apply -> state changed and withdraw -> restored.

#![allow(dead_code)] // server helpers serve providers unevenly

mod aws_shield;
mod cloudflare;
mod digitalocean;
mod f5;
mod hetzner;
mod linode;
mod ovh;
mod radware;
mod server;
mod vultr;
mod webhook;
