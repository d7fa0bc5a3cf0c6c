//! placeholder until levee-sources lands
