#![allow(dead_code)] // each target uses part of it
//! Shared by the fuzz targets: a decoder primed with templates, so fuzzed
//! data sets reach the record decoder, and a bounded decode.

use levee_flow::build;
use levee_flow::template::FieldSpec;
use levee_flow::{DecoderConfig, FlowDecoder, Limits, Output};
use std::net::{IpAddr, Ipv4Addr};

pub const EXPORTER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

pub fn primed() -> FlowDecoder {
    let mut d = FlowDecoder::new(DecoderConfig::default());
    let mut out = Output::default();
    let t = |id, v6, ipfix| build::template_record(id, &build::flow_fields(v6), ipfix);
    let f = |id, length| FieldSpec { id, length, enterprise: 0 };
    let ipfix = build::ipfix(
        0,
        0,
        0,
        &[
            build::set(2, &[t(256, false, true), t(257, true, true)].concat()),
            build::set(3, &build::ipfix_options_template(258, &[f(302, 4)], &[f(305, 4), f(82, 65535)])),
        ],
    );
    d.decode(EXPORTER, 0, &ipfix, &mut out);
    let v9 = build::netflow9(
        0,
        0,
        0,
        &[
            build::set(0, &[t(256, false, false), t(257, true, false)].concat()),
            build::set(1, &build::v9_options_template(258, &[f(2, 4)], &[f(48, 1), f(34, 4)])),
        ],
    );
    d.decode(EXPORTER, 0, &v9, &mut out);
    d
}

/// Decodes `data` (twice, so state left by the first pass is exercised)
/// and checks the limits held.
pub fn run(d: &mut FlowDecoder, data: &[u8]) {
    let limits = Limits::default();
    let mut out = Output::default();
    for now in [1, 2] {
        out.clear();
        let o = d.decode(EXPORTER, now, data, &mut out);
        assert!(out.flows.len() <= limits.max_records_per_datagram);
        assert_eq!(out.flows.len(), o.flows as usize);
        assert!(d.templates().len() <= limits.max_templates);
    }
}
