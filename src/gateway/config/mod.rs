//! The options the gateway runs with: what a caller asks ([`Overrides`]) over `gateway.json`
//! over the defaults, resolved and checked into one [`GatewayConfig`]; where the access key
//! comes from; the perimeter's settings.
pub mod key_source;
pub mod options;
pub mod overrides;
pub mod perimeter_options;

pub use options::GatewayConfig;
pub use overrides::Overrides;
