//! One module per provider. Each follows its vendor's documented API (the
//! module doc cites it) and is tested against a local server enforcing that
//! contract (`tests/contract/`).

pub mod aws_shield;
pub mod cloudflare;
pub mod cloudflare_mt;
pub mod cloudflare_waf;
pub mod digitalocean;
pub mod f5;
pub mod hetzner;
pub mod linode;
pub mod ovh;
pub mod radware;
pub mod vultr;
pub mod webhook;
