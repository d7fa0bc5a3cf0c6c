//! Levee's kernel counter sources: everything between the kernel's counters and
//! a [`levee_model::TickObservation`].
//!
//! - Pure parsers: [`parse_proc_net_dev`], [`parse_snmp`] (text in, counters out).
//! - Seams in front of the kernel, so tests run without root: [`ProcFs`]
//!   ([`RealProcFs`], [`FakeProcFs`]), [`ConnCounter`] ([`SockDiagConnCounter`],
//!   or any closure), [`Clock`] ([`SystemClock`], [`ManualClock`]).
//! - Sources: [`CounterSource`], implemented by the live [`KernelSource`] and by
//!   [`RecordedSource`] for replays.
//! - Pure rate computation: [`RateCalculator`] (wraps, resets, renames).
//!
//! Real use:
//! ```no_run
//! use levee_sources::{CounterSource, InterfaceFilter, KernelSource, RateCalculator};
//! let mut source = KernelSource::system(InterfaceFilter::AllExceptLoopback);
//! let mut rates = RateCalculator::new();
//! loop {
//!     let sample = source.sample()?;
//!     if let Some(e) = source.last_conn_error() {
//!         eprintln!("{e}");
//!     }
//!     if let Ok(Some(tick)) = rates.push(&sample) {
//!         println!("{:?}", tick.observation);
//!     }
//!     std::thread::sleep(std::time::Duration::from_millis(100));
//! }
//! # Ok::<(), levee_sources::SourceError>(())
//! ```

pub mod clock;
pub mod conns;
pub mod error;
pub mod filter;
pub mod kernel;
pub mod procfs;
pub mod procnetdev;
pub mod rates;
pub mod recorded;
pub mod snmp;
pub mod sockdiag;
pub mod source;

pub use clock::{Clock, ManualClock, SystemClock};
pub use conns::ConnCounter;
pub use error::{ParseError, SourceError};
pub use filter::InterfaceFilter;
pub use kernel::KernelSource;
pub use procfs::{FakeProcFs, ProcFs, RealProcFs};
pub use procnetdev::{parse_proc_net_dev, PROC_NET_DEV};
pub use rates::{counter_delta, RateCalculator, RateError, RateTick, Rename};
pub use recorded::RecordedSource;
pub use snmp::{parse_snmp, PROC_NET_SNMP, PROC_NET_SNMP6};
pub use sockdiag::SockDiagConnCounter;
pub use source::CounterSource;
